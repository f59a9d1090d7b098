"""The client address of a request, taken from a trusted source only.

``REMOTE_ADDR`` is the peer that opened the connection. ``X-Forwarded-For`` is
believed only when that peer is one of ``settings.CC_TRUSTED_PROXIES`` (the
reverse proxy in front of gunicorn); then the right-most address that is not
itself a trusted proxy is the client. Anything else a browser sends is ignored,
so a user cannot choose the address written to the lockout table or the audit log.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    peer = str(request.META.get("REMOTE_ADDR") or "")
    trusted: frozenset[str] = frozenset(settings.CC_TRUSTED_PROXIES)
    if peer not in trusted:
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    for candidate in reversed([part.strip() for part in forwarded.split(",")]):
        if candidate in trusted:
            continue
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break
        return candidate
    return peer
