"""Template context for the shell: navigation and who is signed in."""

from typing import Any

from django.http import HttpRequest

NAVIGATION = [
    ("dashboard", "Dashboard", "layout-dashboard", "web:dashboard"),
    ("customers", "Customers", "users", "web:customers"),
    ("segments", "Segments", "funnel", "web:segments"),
    ("campaigns", "Campaigns", "send", "web:campaigns"),
    ("imports", "Imports", "upload", "web:imports"),
    ("settings", "Settings", "settings", "accounts:settings"),
]


def shell(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    section = getattr(match, "url_name", "") or ""
    namespace = getattr(match, "namespace", "") or ""
    current = f"{namespace}:{section}"
    active = next((key for key, _l, _i, url in NAVIGATION if current.startswith(url)), "")
    if not active and section:
        active = next((key for key, *_ in NAVIGATION if section.startswith(key.rstrip("s"))), "")
    return {"navigation": NAVIGATION, "active_section": active}
