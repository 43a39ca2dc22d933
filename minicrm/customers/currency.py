"""Exchange rates read for conversion: what an order in another currency is worth in the shop's.

An order's rate is its currency's rate on the order's date (in the shop's time zone), or for want
of one the latest earlier rate at most MINICRM_RATE_MAX_AGE_DAYS old; with neither the order is
refused (a row error), never summed unconverted. Money rounds half-up to the cent.
"""

import bisect
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import cache

from babel.numbers import list_currencies
from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import ExchangeRate

CENTS = Decimal("0.01")
# Enough digits for a 12-digit amount times a 20-digit rate, so the product is exact before it is
# rounded once to the cent (the default 28 would round it twice).
EXACT = Context(prec=60)

RateKey = tuple[str, date]


def shop_currency() -> str:
    return str(settings.MINICRM_CURRENCY)


def rate_max_age_days() -> int:
    return int(settings.MINICRM_RATE_MAX_AGE_DAYS)


@cache
def currency_codes() -> frozenset[str]:
    """The ISO 4217 codes Babel knows (its list is fixed for the process)."""
    return frozenset(list_currencies())


def currency_is_known(code: str) -> bool:
    return code in currency_codes()


def money_round(value: Decimal) -> Decimal:
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def amount_at_rate(amount: Decimal, rate: Decimal) -> Decimal:
    """`amount` of a currency in the shop currency at `rate`, rounded half-up to the cent."""
    return money_round(EXACT.multiply(amount, rate))


def order_day(ordered_at: datetime) -> date:
    """The date whose rate converts an order: its calendar day in the shop's time zone."""
    if timezone.is_naive(ordered_at):
        return ordered_at.date()
    return timezone.localtime(ordered_at).date()


def day_start(day: date) -> datetime:
    """The first moment of `day` in the shop's time zone (the bound of a date range in SQL)."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def rate_missing_message(currency: str, day: date) -> str:
    days = rate_max_age_days()
    before = f" or the {days} days before" if days else ""
    return (
        f"No {currency} rate for {day.isoformat()}{before}; add one with "
        "manage.py import_rates or POST /api/v1/rates."
    )


def rates_for(keys: Iterable[RateKey], *, lock: bool = False) -> dict[RateKey, Decimal | None]:
    """The rate of each (currency, day), None where there is none within the max age.

    One query per currency, however many orders and days: a bulk of 10,000 orders looks its
    rates up once. The shop currency converts at 1.

    `lock` (ingestion, inside its transaction) share-locks the rates read, so a change of them
    waits for the orders converted with them to commit, and the re-conversion it queues sees
    those orders; a rate being added next to them locks its predecessor the same way
    (minicrm.customers.rates), and is then read here. SQLite runs one writer at a time anyway.
    """
    wanted: dict[str, set[date]] = {}
    for currency, day in keys:
        wanted.setdefault(currency, set()).add(day)
    age = timedelta(days=rate_max_age_days())
    found: dict[RateKey, Decimal | None] = {}
    for currency in sorted(wanted):
        days = wanted[currency]
        if currency == shop_currency():
            found.update(((currency, day), Decimal(1)) for day in days)
            continue
        stored = _rates_read(currency, min(days) - age, max(days), lock=lock)
        stored_days = [day for day, _rate in stored]
        for day in days:
            position = bisect.bisect_right(stored_days, day) - 1
            if position >= 0 and day - stored_days[position] <= age:
                found[(currency, day)] = stored[position][1]
            else:
                found[(currency, day)] = None
    return found


def rate_for(currency: str, day: date) -> Decimal | None:
    """The rate converting `currency` on `day`: that day's, or the latest within the max age."""
    return rates_for([(currency, day)])[(currency, day)]


def amount_convert(*, amount: Decimal, currency: str, day: date) -> Decimal | None:
    """`amount` in `currency` on `day`, in the shop currency; None when no rate applies."""
    rate = rate_for(currency, day)
    return None if rate is None else amount_at_rate(amount, rate)


def _rates_read(
    currency: str, first: date, last: date, *, lock: bool
) -> list[tuple[date, Decimal]]:
    rates = ExchangeRate.objects.filter(currency=currency, day__gte=first, day__lte=last)
    if not lock or connection.vendor == "sqlite":
        return list(rates.order_by("day").values_list("day", "rate"))
    # The first locking read waits for a rate change in progress; the second, a new statement,
    # also sees (and locks) a rate that change inserted, which PostgreSQL's first snapshot
    # predates. Read in (currency, day) order, the order rates_upsert locks in.
    share = "FOR SHARE" if connection.vendor == "postgresql" else "LOCK IN SHARE MODE"
    sql, params = rates.order_by("day").values_list("day", "rate").query.sql_with_params()
    with connection.cursor() as cursor:
        for _read in range(2):
            cursor.execute(f"{sql} {share}", params)
            found = cursor.fetchall()
    return [(day, Decimal(rate) if not isinstance(rate, Decimal) else rate) for day, rate in found]
