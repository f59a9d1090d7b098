"""Which function runs a job of each kind.

Apps register their handlers in ``<app>/jobs.py`` with :func:`job_handler`; the jobs app
imports those modules at start-up, so the web processes and the worker know the same kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.services import JobContext

Handler = Callable[..., dict[str, Any] | None]

_HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``function(ctx, **params)`` as the handler of jobs of ``kind``."""

    def register(function: Handler) -> Handler:
        existing = _HANDLERS.get(kind)
        if existing is not None and existing is not function:
            raise ValueError(f"job kind {kind!r} already has a handler: {existing!r}")
        _HANDLERS[kind] = function
        return function

    return register


def handler_for(kind: str) -> Handler:
    """The handler registered for ``kind``; KeyError when there is none."""
    return _HANDLERS[kind]


def run_handler(handler: Handler, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return handler(ctx, **params) or {}
