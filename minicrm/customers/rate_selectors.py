"""Reads for exchange rates and the re-conversions their changes queued."""

from datetime import date

from django.db.models import QuerySet

from minicrm.core.errors import NotFoundError

from .models import ExchangeRate, RateReconversion


def rate_list(
    *, currency: str = "", day_from: date | None = None, day_to: date | None = None
) -> QuerySet[ExchangeRate]:
    """Rates, newest day first (the unique (currency, day) index serves a currency's list)."""
    rates = ExchangeRate.objects.all()
    if currency:
        rates = rates.filter(currency=currency.strip().upper())
    if day_from:
        rates = rates.filter(day__gte=day_from)
    if day_to:
        rates = rates.filter(day__lte=day_to)
    return rates.order_by("-day", "currency")


def reconversion_list() -> QuerySet[RateReconversion]:
    return RateReconversion.objects.order_by("-created_at", "-id")


def reconversion_latest() -> RateReconversion | None:
    return reconversion_list().first()


def reconversion_get(*, reconversion_id: int) -> RateReconversion:
    try:
        return RateReconversion.objects.get(pk=reconversion_id)
    except RateReconversion.DoesNotExist:
        raise NotFoundError(f"Rate re-conversion {reconversion_id} does not exist.") from None
