"""Money and dates written the one way the whole product shows them (pages, messages, exports)."""

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone


def money(value: Decimal | float | int | None, places: int = 0) -> str:
    """'₹12,500' (the configured symbol, thousands separated); '—' for no value."""
    if value is None:
        return "—"
    amount = round(float(value), places)
    text = f"{abs(amount):,.{places}f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{settings.MINICRM_CURRENCY_SYMBOL}{text}"


def day(value: date | datetime | None) -> str:
    """'4 Mar 2026', in the configured time zone for moments."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return f"{value.day} {value:%b %Y}"
