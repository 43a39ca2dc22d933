"""The shell's own pages: dashboard and global customer search (the health probes are in
views_health)."""

import json
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET

from minicrm.accounts.models import Role, User
from minicrm.core.charts import sparkline_points
from minicrm.core.formatting import money_format_options
from minicrm.core.tasks import enqueue_on_commit
from minicrm.customers.selectors import customer_list

from .date_range import MAX_CUSTOM_DAYS, PRESETS, DateRange, date_range_parse
from .rfm import Band, Rfm
from .selectors import (
    CACHE_SECONDS,
    Dashboard,
    SegmentTrend,
    change_ratio,
    dashboard_get,
    dashboard_is_stale,
)
from .tasks import dashboard_refresh_task
from .templatetags.formatting import count, money

SEARCH_RESULTS = 8
SEARCH_MAX_LENGTH = 100
DASH = "\N{EN DASH}"
# The sparkline's box (SVG user units); the template scales it to the cell.
# Shades of an RFM cell by its share of the largest cell (0 = empty).
HEAT_LEVELS = 5


def _delta(now: Decimal | int | None, before: Decimal | int | None) -> dict[str, str]:
    change = change_ratio(now, before)
    if change is None:
        return {"delta": "", "trend": ""}
    return {
        "delta": f"{change:+.0%}",
        "trend": "" if not change else ("up" if change > 0 else "down"),
    }


def _span_label(first: date, last: date, unit: str) -> str:
    if unit == "day":
        return date_format(first, "j M")
    if unit == "month":
        return date_format(first, "M Y")
    return date_format(first, "j M")


def _days_label(band: Band) -> str:
    if band.low == band.high:
        return f"{band.low} day{'' if band.low == 1 else 's'}"
    return f"{band.low}{DASH}{band.high} days"


def _orders_label(band: Band) -> str:
    if band.high is None:
        return f"{band.low}+ orders"
    if band.low == band.high:
        return f"{band.low} order{'' if band.low == 1 else 's'}"
    return f"{band.low}{DASH}{band.high} orders"


def _spend_label(band: Band) -> str:
    """Whole units, like every total (core.formatting): a band starts a paisa above the last
    one's edge, so rounded the two meet at the same amount, as a histogram's bins do."""
    low, high = money(band.low), money(band.high)
    if band.high is None:
        return f"{low} or more"
    if not band.low:
        return f"up to {high}"
    return high if low == high else f"{low}{DASH}{high}"


def _rfm_context(rfm: Rfm, *, can_build: bool) -> dict[str, Any]:
    largest = max((cell.customers for row in rfm.cells for cell in row), default=0)
    builder = reverse("segments:new")
    rows = []
    for index, (band, cells) in enumerate(zip(rfm.recency, rfm.cells, strict=True)):
        rows.append(
            {
                "score": len(rfm.recency) - index,
                "label": _days_label(band),
                "cells": [
                    {
                        "customers": cell.customers,
                        "average_spend": cell.average_spend,
                        "heat": -(-cell.customers * HEAT_LEVELS // largest) if largest else 0,
                        "url": (
                            f"{builder}?{urlencode({'rules': json.dumps(cell.rules)})}"
                            if can_build and cell.customers
                            else ""
                        ),
                        "description": (
                            f"customer{'' if cell.customers == 1 else 's'}, last order "
                            f"{_days_label(band)} ago, {_orders_label(rfm.frequency[f])}"
                        ),
                    }
                    for f, cell in enumerate(cells)
                ],
            }
        )
    return {
        "can_build": can_build,
        "rows": rows,
        "frequency": [
            {"score": index + 1, "label": _orders_label(band)}
            for index, band in enumerate(rfm.frequency)
        ],
        "monetary": [
            {"score": index + 1, "label": _spend_label(band)}
            for index, band in enumerate(rfm.monetary)
        ],
    }


def _segment_rows(segments: list[SegmentTrend], customers: int) -> list[dict[str, Any]]:
    return [
        {
            "pk": segment.pk,
            "name": segment.name,
            "size": segment.size,
            "share": f"{segment.size / customers:.0%}" if customers else "",
            "change": segment.change,
            "change_text": f"{segment.change:+,}" if segment.change is not None else "",
            "sparkline": sparkline_points(segment.points),
        }
        for segment in segments
    ]


def _range_query(date_range: DateRange) -> str:
    if date_range.preset:
        return urlencode({"range": date_range.preset})
    return urlencode(
        {"range": "custom", "from": date_range.start.isoformat(), "to": date_range.end.isoformat()}
    )


def _refresh_later(date_range: DateRange) -> None:
    enqueue_on_commit(
        dashboard_refresh_task,
        date_range.start.isoformat(),
        date_range.end.isoformat(),
        date_range.preset,
    )


def _dashboard_range(request: HttpRequest) -> tuple[DateRange, str]:
    return date_range_parse(
        preset=request.GET.get("range"),
        start=request.GET.get("from"),
        end=request.GET.get("to"),
        today=timezone.localdate(),
    )


def _figures_context(
    data: Dashboard, date_range: DateRange, request: HttpRequest
) -> dict[str, Any]:
    user = request.user
    can_build = isinstance(user, User) and user.has_role(Role.MARKETER)
    chart = {
        # The shop currency and locale, so the script writes money as the server does.
        "money": money_format_options(),
        "unit": data.unit,
        "buckets": [
            {
                "label": _span_label(bucket.start, bucket.end, data.unit),
                "start": bucket.start.isoformat(),
                "revenue": float(bucket.revenue),
                "new_customers": bucket.new_customers,
            }
            for bucket in data.buckets
        ],
    }
    return {
        "data": data,
        "chart": chart,
        "refreshing": dashboard_is_stale(data, date_range=date_range),
        "revenue_delta": _delta(data.revenue, data.previous_revenue),
        "orders_delta": _delta(data.orders, data.previous_orders),
        "aov_delta": _delta(data.average_order_value, data.previous_average_order_value),
        "new_delta": _delta(data.new_customers, data.previous_new_customers),
        "bucket_note": " Weeks start on Monday." if data.unit == "week" else "",
        "rfm": _rfm_context(data.rfm, can_build=can_build),
        "segments": _segment_rows(data.segments, data.customers),
        # Rows of the charts' table fallback, as people read them.
        "revenue_rows": [
            (_span_label(bucket.start, bucket.end, data.unit), money(bucket.revenue))
            for bucket in data.buckets
        ],
        "new_rows": [
            (_span_label(bucket.start, bucket.end, data.unit), count(bucket.new_customers))
            for bucket in data.buckets
        ],
    }


def _dashboard_context(request: HttpRequest, date_range: DateRange) -> dict[str, Any]:
    """The page's context; `computing` (no figures yet: a task computes them) or the figures."""
    data = dashboard_get(date_range=date_range, refresh=_refresh_later)
    range_query = _range_query(date_range)
    context: dict[str, Any] = {
        "date_range": date_range,
        "computing": data is None,
        "today": timezone.localdate(),
        "cache_minutes": CACHE_SECONDS // 60,
        "range_query": range_query,
        "figures_url": f"{reverse('web:dashboard_figures')}?{range_query}",
    }
    if data is not None:
        context.update(_figures_context(data, date_range, request))
    return context


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    date_range, problem = _dashboard_range(request)
    if problem:
        messages.warning(request, problem)
    context = _dashboard_context(request, date_range)
    context.update(
        {
            "presets": PRESETS,
            "max_custom_days": MAX_CUSTOM_DAYS,
            "previous": date_range.previous(),
        }
    )
    return render(request, "web/dashboard.html", context)


@require_GET
def dashboard_figures(request: HttpRequest) -> HttpResponse:
    """What the computing page polls for: 204 (nothing to swap, htmx asks again) until the
    range's figures are computed, then the figures and the line saying when."""
    date_range, _problem = _dashboard_range(request)
    context = _dashboard_context(request, date_range)
    if context["computing"]:
        return HttpResponse(status=204)
    return render(request, "web/_dashboard_figures.html", {**context, "swap": True})


@require_GET
def customer_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    customers = list(customer_list(search=query)[:SEARCH_RESULTS]) if query else []
    return render(
        request, "web/customer_search_results.html", {"customers": customers, "query": query}
    )
