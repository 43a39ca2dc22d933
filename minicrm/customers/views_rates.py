"""The exchange-rates page: the latest rates and the re-conversions their changes queued."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .rate_selectors import rate_list, reconversion_list

SHOWN_RATES = 100
SHOWN_RECONVERSIONS = 5


@require_GET
def rates_page(request: HttpRequest) -> HttpResponse:
    reconversions = list(reconversion_list()[:SHOWN_RECONVERSIONS])
    context = {
        "rates": list(rate_list()[:SHOWN_RATES]),
        "rate_count": rate_list().count(),
        "reconversions": reconversions,
        # The page polls itself while a re-conversion is still under way.
        "working": any(job.status in {"queued", "running"} for job in reconversions),
        "shop_currency": settings.MINICRM_CURRENCY,
        "max_age_days": settings.MINICRM_RATE_MAX_AGE_DAYS,
    }
    return render(request, "customers/rates.html", context)
