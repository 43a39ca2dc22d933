"""Numbers and dates for people: currency with the configured symbol, counts with separators."""

from datetime import datetime
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone

from minicrm.core import formatting

register = template.Library()


@register.filter
def money(value: Decimal | float | int | None, places: int = 0) -> str:
    return formatting.money(value, places)


@register.filter
def count(value: int | None) -> str:
    return "—" if value is None else intcomma(value)


# (seconds in the unit, unit name, up to how many of them before the next unit takes over)
_UNITS = [(60, "minute", 60), (3600, "hour", 24), (86400, "day", 60), (30 * 86400, "month", 24)]


@register.filter
def ago(value: datetime | None) -> str:
    """'12 days ago', 'in 3 hours', 'just now': one unit, as people say it (UX.md)."""
    if value is None:
        return "—"
    seconds = (timezone.now() - value).total_seconds()
    span = abs(seconds)
    if span < 60:
        return "just now"
    amount, unit = int(span // (365 * 86400)), "year"
    for size, name, limit in _UNITS:
        if span < size * limit:
            amount, unit = int(span // size), name
            break
    text = f"{amount}\xa0{unit}{'' if amount == 1 else 's'}"
    return f"{text} ago" if seconds > 0 else f"in {text}"
