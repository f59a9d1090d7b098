"""Run by test_transport in a child process: write a set, and stop (then be killed) at a point."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from gateways.transport import SshTarget, open_folder


async def main(args: dict[str, Any]) -> None:
    point = args["point"]
    target = SshTarget(**args["target"])
    files = {name: text.encode() for name, text in args["files"].items()}
    async with open_folder(target, args["folder"]) as remote:
        sftp = remote.sftp
        calls = {"upload": 0, "rename": 0}

        async def stop_here() -> None:
            print("KILLME", flush=True)
            await asyncio.sleep(60)

        upload = remote._upload
        rename = sftp.posix_rename

        async def slow_upload(name: str, data: bytes, mode: int) -> None:
            await upload(name, data, mode)
            calls["upload"] += 1
            if point == "upload" and calls["upload"] == 2:
                await stop_here()

        async def slow_rename(old: Any, new: Any) -> None:
            await rename(old, new)
            if ".rcc-tmp-" in str(old):
                calls["rename"] += 1
                if point == f"rename{calls['rename']}":
                    await stop_here()

        remote._upload = slow_upload  # type: ignore[method-assign]
        sftp.posix_rename = slow_rename  # type: ignore[method-assign,assignment]
        await remote.write_set(files, {})
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
