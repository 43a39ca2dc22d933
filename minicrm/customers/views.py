"""Customer pages: the searchable, filterable list and one customer with their orders.

The list answers htmx requests with the results fragment alone (the filters update the table in
place and push the URL); a full request, or htmx restoring history, gets the whole page. The
customer's order history pages the same way (its fragment for htmx, the page otherwise).
"""

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET

from minicrm.accounts.models import Role, User
from minicrm.core.errors import NotFoundError
from minicrm.core.formatting import money
from minicrm.core.limits import MAX_PAGE_NUMBER
from minicrm.core.replica import replica_reads

from .models import Customer
from .selectors import (
    customer_city_list,
    customer_country_list,
    customer_get,
    customer_list,
    customer_orders,
    customer_tags,
    customer_total,
    tag_name_list,
)

PAGE_SIZE = 50
# Past this many matches the list says "10,000+" instead of counting every row of a big base:
# the capped count costs at most a scan of that many rows, whatever the filters.
COUNT_CAP = 10_000
CHOICES_CACHE_SECONDS = 300
MAX_CHOICES = 300
ORDERS_PAGE_SIZE = 50
SKELETON_ROWS = 8

# Sort keys in the URL and the selector's ordering they stand for.
SORTS = {
    "name": "name",
    "city": "city",
    "orders": "order_count",
    "spend": "total_spend",
    "last_order": "last_order_at",
}
DEFAULT_SORT = "-last_order"
SEARCH_FIELDS = ("q", "city", "country", "tag", "spend_min", "spend_max")
FILTER_LABELS = {
    "q": "Search",
    "city": "City",
    "country": "Country",
    "tag": "Tag",
    "spend_min": "Spend from",
    "spend_max": "Spend to",
}


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    city = forms.CharField(required=False, max_length=100)
    country = forms.CharField(required=False, max_length=100)
    tag = forms.CharField(required=False, max_length=50)
    spend_min = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Spend from"
    )
    spend_max = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Spend to"
    )
    sort = forms.CharField(required=False)

    def clean_sort(self) -> str:
        sort: str = self.cleaned_data.get("sort") or DEFAULT_SORT
        return sort if sort.lstrip("-") in SORTS else DEFAULT_SORT


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False


COLUMNS = [
    Column("name", "Customer"),
    Column("city", "City"),
    Column("orders", "Orders", numeric=True),
    Column("spend", "Total spend", numeric=True),
    Column("last_order", "Last order"),
]


def _filter_choices() -> dict[str, list[str]]:
    """Values offered by the filter inputs: distinct-value scans, so cached for minutes."""

    def compute() -> dict[str, list[str]]:
        return {
            "cities": customer_city_list()[:MAX_CHOICES],
            "countries": customer_country_list()[:MAX_CHOICES],
            "tags": tag_name_list()[:MAX_CHOICES],
        }

    return cast(
        dict[str, list[str]],
        cache.get_or_set("customers:filter-choices", compute, CHOICES_CACHE_SECONDS),
    )


def _query(params: dict[str, Any]) -> QuerySet[Customer]:
    sort: str = params["sort"]
    descending = sort.startswith("-")
    ordering = ("-" if descending else "") + SORTS[sort.lstrip("-")]
    return customer_list(
        search=params["q"],
        city=params["city"],
        country=params["country"],
        tag=params["tag"],
        spend_min=params["spend_min"],
        spend_max=params["spend_max"],
        ordering=ordering,
    )


def _count(queryset: QuerySet[Customer], *, filtered: bool) -> tuple[int, bool]:
    """How many customers match, and whether that number is only a lower bound."""
    if not filtered:
        return customer_total(), False
    capped = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
    return min(capped, COUNT_CAP), capped > COUNT_CAP


def _page_number(request: HttpRequest) -> int:
    try:
        return min(max(1, int(request.GET.get("page", "1"))), MAX_PAGE_NUMBER)
    except ValueError:
        return 1


def _url(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    query = {key: value for key, value in merged.items() if value not in (None, "", 1)}
    if query.get("sort") == DEFAULT_SORT:
        del query["sort"]
    path = reverse("customers:list")
    return f"{path}?{urlencode(query)}" if query else path


def _sort_headers(params: dict[str, Any]) -> list[dict[str, Any]]:
    sort: str = params["sort"]
    descending = sort.startswith("-")
    headers = []
    for column in COLUMNS:
        active = sort.lstrip("-") == column.key
        # The first click on a number or a date sorts high to low (recent first); on text, A-Z.
        first = f"-{column.key}" if column.numeric or column.key == "last_order" else column.key
        next_sort = (column.key if descending else f"-{column.key}") if active else first
        headers.append(
            {
                "column": column,
                "active": active,
                "descending": descending,
                "url": _url(params, sort=next_sort, page=1),
                "aria_sort": ("descending" if descending else "ascending") if active else "none",
            }
        )
    return headers


def _chip_value(key: str, value: Any) -> str:
    if key in ("spend_min", "spend_max"):
        return money(value, 0 if value == value.to_integral_value() else 2)
    return str(value)


def _filter_chips(params: dict[str, Any]) -> list[dict[str, str]]:
    """One chip per active filter; its link is the same list without that filter alone."""
    return [
        {
            "key": key,
            "label": FILTER_LABELS[key],
            "value": _chip_value(key, params[key]),
            "remove_url": _url(params, **{key: "", "page": 1}),
        }
        for key in SEARCH_FIELDS
        if params[key] not in ("", None)
    ]


def _saved_filters_query(params: dict[str, Any]) -> str:
    """The filters as a query string for "Save as segment" (its page turns them into rules), or
    "" when they cannot all be rules: a name or external-id search has none (an email search,
    with an @, has)."""
    search = params["q"].strip()
    if search and "@" not in search:
        return ""
    kept = {key: params[key] for key in SEARCH_FIELDS if params[key] not in ("", None)}
    return urlencode(kept)


def _can_save_audiences(request: HttpRequest) -> bool:
    return isinstance(request.user, User) and request.user.has_role(Role.MARKETER)


def _results(request: HttpRequest, form: CustomerFilterForm) -> dict[str, Any]:
    form.is_valid()  # an invalid filter is left out and its error shown; the rest still apply
    data = form.cleaned_data
    params: dict[str, Any] = {key: data.get(key) or "" for key in ("q", "city", "country", "tag")}
    params.update(
        spend_min=data.get("spend_min"),
        spend_max=data.get("spend_max"),
        sort=data.get("sort") or DEFAULT_SORT,
    )
    filtered = any(params[key] not in ("", None) for key in SEARCH_FIELDS)
    page = _page_number(request)
    queryset = _query(params)
    offset = (page - 1) * PAGE_SIZE
    rows = list(queryset[offset : offset + PAGE_SIZE + 1])
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if page == 1 and not has_next:
        total, more = len(rows), False
    else:
        total, more = _count(queryset, filtered=filtered)
    return {
        "customers": rows,
        "params": params,
        "filtered": filtered,
        "columns": _sort_headers(params),
        "page": page,
        "first_index": offset + 1 if rows else 0,
        "last_index": offset + len(rows),
        "total": total,
        "total_is_lower_bound": more,
        "previous_url": _url(params, page=page - 1) if page > 1 else "",
        "next_url": _url(params, page=page + 1) if has_next else "",
        "clear_url": _url({"sort": params["sort"]}),
        "chips": _filter_chips(params),
        "saved_filters_query": _saved_filters_query(params) if filtered else "",
        "can_save_audience": _can_save_audiences(request),
        "current_url": _url(params, page=page),
        "form_errors": form.errors,
        "skeleton_rows": range(SKELETON_ROWS),
    }


@require_GET
@replica_reads()
def customer_list_page(request: HttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET)
    context = _results(request, form)
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    if partial:
        response = render(request, "customers/_results.html", context)
        # The address bar gets the short form of the state (no empty or default parameters).
        response["HX-Push-Url"] = context["current_url"]
    else:
        context.update(choices=_filter_choices())
        response = render(request, "customers/list.html", context)
    # The same URL answers with a fragment or a page; caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _orders_page_number(request: HttpRequest) -> int:
    try:
        return min(max(1, int(request.GET.get("orders_page", "1"))), MAX_PAGE_NUMBER)
    except ValueError:
        return 1


def _orders_context(request: HttpRequest, customer: Customer) -> dict[str, Any]:
    """One page of the customer's orders, newest first, with links to the pages around it.

    Numbered pages with a count: a customer's orders are at most thousands, counted and sorted
    from the (customer, status, ordered_at) index.
    """
    paginator = Paginator(customer_orders(customer_id=customer.pk), ORDERS_PAGE_SIZE)
    page = paginator.get_page(_orders_page_number(request))
    path = reverse("customers:detail", args=[customer.pk])

    def url(number: int) -> str:
        return path if number == 1 else f"{path}?{urlencode({'orders_page': number})}"

    return {
        "customer": customer,
        "orders": page.object_list,
        "orders_page": page,
        "all_orders": paginator.count,
        "orders_previous_url": url(page.previous_page_number()) if page.has_previous() else "",
        "orders_next_url": url(page.next_page_number()) if page.has_next() else "",
        "orders_current_url": url(page.number),
        "default_currency": settings.MINICRM_CURRENCY,
    }


@require_GET
def customer_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        customer = customer_get(customer_id=pk)
    except NotFoundError as error:
        raise Http404(error.message) from error
    context = _orders_context(request, customer)
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    if partial:
        # Only the order history's pager asks this URL with htmx: it gets the history alone.
        response = render(request, "customers/_orders.html", context)
        response["HX-Push-Url"] = context["orders_current_url"]
    else:
        context.update(
            tags=customer_tags(customer),
            since=customer.signed_up_at or customer.created_at,
            # One unit ("3 weeks") fits a stat card; the exact date is under it and on hover.
            last_order_ago=timesince(customer.last_order_at, depth=1)
            if customer.last_order_at
            else "",
        )
        response = render(request, "customers/detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
