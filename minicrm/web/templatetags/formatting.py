"""Numbers and dates for people: money as minicrm.core.formatting writes it, counts with
separators, moments as "12 days ago"."""

from datetime import datetime
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone
from django.utils.html import json_script
from django.utils.safestring import SafeString

from minicrm.core import formatting

register = template.Library()


@register.filter
def money(value: Decimal | float | int | None, places: int = 0) -> str:
    """`{{ amount|money }}` in the shop currency, whole units; `|money:2` to the cent."""
    return formatting.money(value, places)


@register.filter
def money_in(value: Decimal | float | int | None, currency: str) -> str:
    """`{{ order.original_amount|money_in:order.currency }}`: an amount in its own currency,
    to the cent (an order's amount is), written in the shop locale."""
    return formatting.money(value, 2, currency=currency)


@register.filter
def money_compact(value: Decimal | float | int | None) -> str:
    """`{{ amount|money_compact }}`: '₹25L', '$2.5M' where space is short."""
    return formatting.money_compact(value)


@register.filter
def count(value: int | None) -> str:
    return "—" if value is None else intcomma(value)


@register.filter
def count_compact(value: int | None) -> str:
    """`{{ size|count_compact }}`: '12.3L', '1.2M' in the shop locale where space is short."""
    return formatting.number_compact(value)


# A stat card's value up to this many characters is scaled to fit its card (app.css, .stat-fit-N);
# a longer one wraps.
STAT_FIT_MAX = 24


@register.filter
def stat_fit(value: object) -> str:
    """`stat-fit-N` for a stat value of N characters (5 to STAT_FIT_MAX), so app.css can size it
    to its card's width without an inline style (the CSP forbids them); '' for the shortest
    values. Letters are wider than digits: "May 2026" wraps in a phone's half-width card at the
    full size where "₹61,728" fits, so anything past 4 characters is fitted."""
    length = len(str(value))
    return f"stat-fit-{min(length, STAT_FIT_MAX)}" if length > 4 else ""


@register.simple_tag
def number_format_script(element_id: str = "number-format") -> SafeString:
    """`{% number_format_script %}`: the shop currency and locale for a page's charts, read by
    scripts to write money and compact counts as the server does (Intl.NumberFormat)."""
    return json_script(formatting.money_format_options(), element_id)


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
