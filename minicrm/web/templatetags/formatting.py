"""Numbers and dates for people: currency with the configured symbol, counts with separators."""

from datetime import datetime
from decimal import Decimal

from django import template
from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma, naturaltime

register = template.Library()


@register.filter
def money(value: Decimal | float | int | None, places: int = 0) -> str:
    if value is None:
        return "—"
    amount = round(float(value), places)
    text = f"{abs(amount):,.{places}f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{settings.MINICRM_CURRENCY_SYMBOL}{text}"


@register.filter
def count(value: int | None) -> str:
    return "—" if value is None else intcomma(value)


@register.filter
def ago(value: datetime | None) -> str:
    return "—" if value is None else str(naturaltime(value))
