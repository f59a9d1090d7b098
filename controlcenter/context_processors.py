from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse


def navigation(request: HttpRequest) -> dict[str, object]:
    """The header's links; the menu page itself uses controlcenter.navigation."""
    match = getattr(request, "resolver_match", None)
    return {
        "nav_section": match.namespace if match else "",
        "nav_dashboard_url": reverse("controlcenter:dashboard"),
        "nav_system_menu_url": reverse("controlcenter:system-menu"),
    }
