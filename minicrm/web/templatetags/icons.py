"""`{% icon "name" %}`: an inline Lucide SVG (npm lucide-static, copied by the setup)."""

import re
from functools import lru_cache

from django import template
from django.conf import settings
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_NAME = re.compile(r"^[a-z0-9-]+$")


@lru_cache(maxsize=256)
def _svg(name: str) -> str:
    if not _NAME.match(name):
        raise template.TemplateSyntaxError(f"Bad icon name {name!r}")
    path = settings.VAR_DIR / "icons" / f"{name}.svg"
    try:
        svg = path.read_text()
    except FileNotFoundError as exc:
        raise template.TemplateSyntaxError(
            f"Icon {name!r} not found in {path.parent}: run `manage.py vendor_assets`."
        ) from exc
    # Drop the licence comment and the fixed size: CSS sizes icons to the text around them.
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S).strip()
    return re.sub(r'\s(width|height|class)="[^"]*"', "", svg, count=3)


@register.simple_tag
def icon(name: str, css_class: str = "", label: str = "") -> SafeString:
    svg = _svg(name)
    classes = escape(f"icon icon-{name} {css_class}".strip())
    aria = (
        f'role="img" aria-label="{escape(label)}"'
        if label
        else 'aria-hidden="true" focusable="false"'
    )
    return mark_safe(svg.replace("<svg", f'<svg class="{classes}" {aria}', 1))  # noqa: S308
