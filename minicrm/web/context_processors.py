"""Template context for the shell: navigation and who is signed in."""

from typing import Any

from django.http import HttpRequest

NAVIGATION = [
    ("dashboard", "Dashboard", "layout-dashboard", "web:dashboard"),
    ("customers", "Customers", "users", "customers:list"),
    ("segments", "Segments", "funnel", "segments:list"),
    ("campaigns", "Campaigns", "send", "campaigns:list"),
    ("imports", "Imports", "upload", "imports:list"),
    ("settings", "Settings", "settings", "accounts:settings"),
]


def shell(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    namespace = getattr(match, "namespace", "") or ""
    url_name = getattr(match, "url_name", "") or ""
    # Each section's pages live in the app namespace of the same name (customers:detail, ...).
    active = namespace if namespace in {key for key, *_ in NAVIGATION} else ""
    if namespace == "accounts" and url_name.startswith("settings"):
        active = "settings"
    elif namespace == "web":
        active = "dashboard" if url_name == "dashboard" else ""
    return {"navigation": NAVIGATION, "active_section": active}
