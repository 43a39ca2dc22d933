"""Money and dates written the one way the whole product shows them (pages, messages, exports).

Money is written by Babel for the shop currency (settings.MINICRM_CURRENCY) in the shop locale
(settings.MINICRM_LOCALE): INR in en_IN is "₹69,04,874" (lakh grouping), USD in en "$6,904,874",
EUR in de "6.904.874 €". One rule for places, everywhere: totals, averages, cards, charts and
prose in whole units (`places=0`, the default); a single order's amount, and per-recipient
figures, to the cent (`places=2`). Amounts round half-up, like the amounts themselves
(minicrm.customers.currency), so ₹12.50 is shown as ₹13 on every page.
"""

import copy
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache

from babel import Locale
from babel.numbers import (
    NumberPattern,
    format_compact_currency,
    format_compact_decimal,
    get_currency_precision,
    get_currency_symbol,
)
from django.conf import settings
from django.utils import timezone

Amount = Decimal | float | int

NO_VALUE = "—"


def shop_currency() -> str:
    return str(settings.MINICRM_CURRENCY)


def shop_locale() -> str:
    return str(settings.MINICRM_LOCALE)


@cache
def _pattern(locale: str, places: int) -> NumberPattern:
    """The locale's currency pattern with exactly `places` decimals (patterns are immutable
    once built, so one per locale and places is shared)."""
    pattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (places, places)
    return pattern


def _decimal(value: Amount) -> Decimal:
    # str() first: Decimal(0.1) would carry the float's binary error into the rounding.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money(value: Amount | None, places: int = 0, *, currency: str | None = None) -> str:
    """'₹12,500' in the shop currency, or `currency` (an order's own, 'EUR') in the shop
    locale; '—' for no value. `places` is capped at the currency's own (no ¥1,234.00)."""
    if value is None:
        return NO_VALUE
    code = currency or shop_currency()
    places = min(places, get_currency_precision(code))
    locale = shop_locale()
    with localcontext() as context:
        context.rounding = ROUND_HALF_UP
        return _pattern(locale, places).apply(
            _decimal(value), locale, currency=code, currency_digits=False
        )


def money_compact(value: Amount | None, *, currency: str | None = None) -> str:
    """'₹25L', '$2.5M': short amounts for chart axes, one decimal at most."""
    if value is None:
        return NO_VALUE
    return format_compact_currency(
        _decimal(value), currency or shop_currency(), locale=shop_locale(), fraction_digits=1
    )


def number_compact(value: Amount | None) -> str:
    """'12.3L' in en_IN, '1.2M' in en: short counts for chart axes, in the shop locale, one
    decimal at most (counts in full stay grouped in thousands, the `count` filter)."""
    if value is None:
        return NO_VALUE
    return format_compact_decimal(_decimal(value), locale=shop_locale(), fraction_digits=1)


def money_with_original(
    amount: Amount | None, original: Amount | None, currency: str | None, places: int = 2
) -> str:
    """'₹8,312.40 (€92.00)': an order in the shop currency, with what it was sent as beside it
    when that was another currency; just '₹8,312.40' when it was the shop's."""
    shown = money(amount, places)
    if original is None or not currency or currency == shop_currency():
        return shown
    return f"{shown} ({money(original, places, currency=currency)})"


def currency_symbol(currency: str | None = None) -> str:
    """'₹' for INR in en_IN, '$' for USD in en, 'CHF' where a currency has no sign."""
    return str(get_currency_symbol(currency or shop_currency(), locale=shop_locale()))


def money_format_options() -> dict[str, str]:
    """What a page's script needs to write money as the server does, with the browser's
    `Intl.NumberFormat(locale, {style: "currency", currency})`: the code and the BCP 47 locale."""
    return {
        "currency": shop_currency(),
        "locale": shop_locale().replace("_", "-"),
        "symbol": currency_symbol(),
    }


def day(value: date | datetime | None) -> str:
    """'4 Mar 2026', in the configured time zone for moments."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return f"{value.day} {value:%b %Y}"
