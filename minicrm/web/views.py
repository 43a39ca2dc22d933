"""The shell's own pages: dashboard and global customer search (the health probes are in
views_health)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import date_format
from django.views.decorators.http import require_GET

from minicrm.core.formatting import money_format_options
from minicrm.customers.selectors import customer_list

from .selectors import dashboard_get
from .templatetags.formatting import count, money

SEARCH_RESULTS = 8
SEARCH_MAX_LENGTH = 100


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    data = dashboard_get()
    chart = {
        # The shop currency and locale, so the script writes money as the server does.
        "money": money_format_options(),
        "weeks": [
            {"start": week.week_start.isoformat(), "revenue": float(week.revenue)}
            for week in data.weekly_revenue
        ],
        "recency": [
            {
                "label": label,
                "short": label.removesuffix(" days").removesuffix(" ordered"),
                "customers": count,
            }
            for label, count in data.recency
        ],
    }
    change = data.revenue_change
    context = {
        "data": data,
        "chart": chart,
        "revenue_delta": f"{change:+.0%}" if change is not None else "",
        "revenue_trend": "" if not change else ("up" if change > 0 else "down"),
        "repeat_rate": f"{data.repeat_rate:.0%}" if data.repeat_rate is not None else "—",
        "active_share": f"{data.active_customers / data.customers:.0%}" if data.customers else "",
        # Rows of the charts' table fallback, as people read them.
        "revenue_rows": [
            (date_format(week.week_start, "j M Y"), money(week.revenue))
            for week in data.weekly_revenue
        ],
        "recency_rows": [(label, count(customers)) for label, customers in data.recency],
    }
    return render(request, "web/dashboard.html", context)


@require_GET
def customer_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    customers = list(customer_list(search=query)[:SEARCH_RESULTS]) if query else []
    return render(
        request, "web/customer_search_results.html", {"customers": customers, "query": query}
    )
