"""Writes for exchange rates: an idempotent upsert of (date, currency, rate) rows.

A rate added or changed re-converts the stored orders it applies to: those in its currency from
its day up to the next rate's day, at most MINICRM_RATE_MAX_AGE_DAYS on (orders refused for want
of a rate were never stored). That work is queued as a RateReconversion for the worker, after
the rates commit (minicrm.customers.reconversion).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from minicrm.accounts.models import AuditEvent, User
from minicrm.accounts.services import audit_record
from minicrm.core.db_retry import atomic_with_retry
from minicrm.core.tasks import enqueue_on_commit

from .currency import currency_is_known, day_start, rate_max_age_days, shop_currency
from .ingestion import RowError, rows_check_size, rows_validate
from .models import ExchangeRate, Order, RateReconversion

Range = tuple[str, date, date]


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("datetime_date_invalid", "Must be a date written YYYY-MM-DD.")


def _rate_currency(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("currency_invalid", "A three-letter currency code is required.")
    code = value.strip().upper()
    if not currency_is_known(code):
        raise PydanticCustomError("currency_unknown", f"{code!r} is not an ISO 4217 currency code.")
    if code == shop_currency():
        raise PydanticCustomError(
            "currency_shop", f"{code} is the shop currency: its rate is always 1."
        )
    return code


class RateRow(BaseModel):
    """One rate: on `date`, one unit of `currency` is worth `rate` units of the shop currency."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    # Sent as "date"; named `day` here so the field does not hide the type.
    day: Annotated[date, PlainValidator(_day)] = Field(alias="date")
    currency: Annotated[str, PlainValidator(_rate_currency)]
    rate: Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=10, allow_inf_nan=False)]

    @property
    def key(self) -> str:
        # rows_validate refuses a second row with the same key in one batch.
        return f"{self.currency} {self.day.isoformat()}"


@dataclass
class RatesResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    reconversion_id: int | None = None


def rates_upsert(
    *, rows: Sequence[Any], actor: User | None = None, source: str = "api"
) -> RatesResult:
    """Store these rates by (currency, date); invalid rows are reported, the others stored.

    Sending the same rates again changes nothing and queues nothing.
    """
    rows_check_size(rows)
    valid, checked = rows_validate(rows, RateRow, key="key")
    # A repeated (currency, date) is named by its date, the field a person would change.
    errors = [
        RowError(error.index, "date", error.message) if error.field == "key" else error
        for error in checked
    ]
    result = atomic_with_retry(lambda: _rates_store(valid), retry_integrity_error=True)
    result.errors = sorted([*errors, *result.errors], key=lambda error: error.index)
    if result.created or result.updated:
        audit_record(
            action=AuditEvent.Action.RATES_IMPORTED,
            actor=actor,
            target=f"{result.created + result.updated} exchange rates",
            details={
                "source": source,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "errors": len(result.errors),
                "currencies": sorted({row.currency for _index, row in valid}),
                "reconversion_id": result.reconversion_id,
            },
        )
    return result


def _rates_store(valid: list[tuple[int, RateRow]]) -> RatesResult:
    result = RatesResult()
    if not valid:
        return result
    currencies = sorted({row.currency for _index, row in valid})
    days = [row.day for _index, row in valid]
    # Locked from the max age before the first day: a rate added there takes orders over from
    # its predecessor, so a batch converting orders with that one (it share-locks the rates it
    # reads, minicrm.customers.currency) commits before, and the re-conversion sees its orders.
    # In (currency, day) order, the order ingestion reads in.
    age = timedelta(days=rate_max_age_days())
    stored: dict[tuple[str, date], ExchangeRate] = {
        (rate.currency, rate.day): rate
        for rate in ExchangeRate.objects.select_for_update()
        .filter(currency__in=currencies, day__gte=min(days) - age, day__lte=max(days))
        .order_by("currency", "day")
    }
    now = timezone.now()
    inserts: list[ExchangeRate] = []
    updates: list[ExchangeRate] = []
    for _index, row in sorted(valid, key=lambda item: item[1].key):
        rate = stored.get((row.currency, row.day))
        if rate is None:
            inserts.append(ExchangeRate(currency=row.currency, day=row.day, rate=row.rate))
        elif rate.rate != row.rate:
            rate.rate, rate.updated_at = row.rate, now
            updates.append(rate)
        else:
            result.unchanged += 1
    ExchangeRate.objects.bulk_create(inserts)
    ExchangeRate.objects.bulk_update(updates, ["rate", "updated_at"])
    result.created, result.updated = len(inserts), len(updates)
    changed = [(rate.currency, rate.day) for rate in [*inserts, *updates]]
    ranges = [span for span in _ranges_affected(changed) if _has_orders(span)]
    if ranges:
        reconversion = RateReconversion.objects.create(
            ranges=[
                {"currency": currency, "start": start.isoformat(), "end": end.isoformat()}
                for currency, start, end in ranges
            ]
        )
        result.reconversion_id = reconversion.pk
        # Imported here to break the cycle: the task runs the reconversion service.
        from .tasks import rates_reconvert_task

        enqueue_on_commit(rates_reconvert_task, reconversion.pk)
    return result


def _ranges_affected(changed: list[tuple[str, date]]) -> list[Range]:
    """The order dates whose rate the changed (currency, day) rates decide, merged per currency:
    from each day up to the currency's next rate, or the max age after it (end excluded)."""
    age = timedelta(days=rate_max_age_days())
    ranges: list[Range] = []
    by_currency: dict[str, list[date]] = {}
    for currency, day in changed:
        by_currency.setdefault(currency, []).append(day)
    for currency in sorted(by_currency):
        days = sorted(by_currency[currency])
        later = list(
            ExchangeRate.objects.filter(currency=currency, day__gt=days[0], day__lte=days[-1] + age)
            .order_by("day")
            .values_list("day", flat=True)
        )
        spans: list[tuple[date, date]] = []
        for day in days:
            following = next((other for other in later if other > day), None)
            end = day + age + timedelta(days=1)
            if following is not None and following < end:
                end = following
            if spans and day <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((day, end))
        ranges += [(currency, start, end) for start, end in spans]
    return ranges


def _has_orders(span: Range) -> bool:
    currency, start, end = span
    return Order.objects.filter(
        currency=currency, ordered_at__gte=day_start(start), ordered_at__lt=day_start(end)
    ).exists()
