"""Reads for customers and orders, shaped so every list stays index-backed at a million customers.

Search is a case-insensitive prefix match on email, first name and last name (a leading-wildcard
`contains` would read every row on every keystroke); a term with "@" searches emails only, an
exact `external_id` finds that customer alone, and "first last" matches both name prefixes. The
name indexes for this are per database (migration 0003). Measured on SQLite with 1M customers
(bench data from seed_demo): a one-word search 30-60 ms with its count, no match or an email or
an id about 1 ms, a common two-word prefix ("priya sh") about 0.3 s.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, OrderBy, Prefetch, Q, QuerySet
from django.utils import timezone

from minicrm.core.errors import ApplicationError, NotFoundError

from .models import Customer, CustomerTag, Order

# Whitelisted orderings: name -> ORDER BY (the id keeps pages stable when values tie).
CUSTOMER_ORDERINGS: dict[str, tuple[OrderBy | str, ...]] = {
    "-created": ("-id",),
    "created": ("id",),
    "name": ("last_name", "first_name", "id"),
    "-name": ("-last_name", "-first_name", "-id"),
    "city": ("city", "id"),
    "-city": ("-city", "-id"),
    "email": ("email", "id"),
    "-email": ("-email", "-id"),
    "total_spend": ("total_spend", "id"),
    "-total_spend": ("-total_spend", "-id"),
    "order_count": ("order_count", "id"),
    "-order_count": ("-order_count", "-id"),
    # Customers who never ordered go last either way: they have no date to sort by.
    "last_order_at": (F("last_order_at").asc(nulls_last=True), "id"),
    "-last_order_at": (F("last_order_at").desc(nulls_last=True), "-id"),
    "signed_up_at": (F("signed_up_at").asc(nulls_last=True), "id"),
    "-signed_up_at": (F("signed_up_at").desc(nulls_last=True), "-id"),
}
DEFAULT_CUSTOMER_ORDERING = "-created"
ORDER_ORDERINGS: dict[str, tuple[str, ...]] = {
    "-ordered_at": ("-ordered_at", "-id"),
    "ordered_at": ("ordered_at", "id"),
    "-amount": ("-amount", "-id"),
    "amount": ("amount", "id"),
}
DEFAULT_ORDER_ORDERING = "-ordered_at"
RECENT_ORDERS = 10
SUGGESTIONS_LIMIT = 200
SUGGESTIONS_CACHE_SECONDS = 300


def _prefix(field: str, prefix: str) -> Q:
    """`field` starts with `prefix` (stored lower-case), written so each database uses its index."""
    if connection.vendor == "sqlite":
        # SQLite's LIKE ignores case and so cannot use a plain index; a range on the same
        # column can. The LIKE keeps the meaning exact for characters past the range's end.
        return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + "\U0010ffff"}) & Q(
            **{f"{field}__startswith": prefix}
        )
    if connection.vendor == "mysql":
        # MariaDB's `startswith` is LIKE BINARY, which skips the case-insensitive index.
        return Q(**{f"{field}__istartswith": prefix})
    return Q(**{f"{field}__startswith": prefix})


def _search(term: str) -> Q:
    lowered = term.lower()
    if "@" in term:
        return _prefix("email", lowered)
    if Customer.objects.filter(external_id=term).exists():
        # Someone pasted a key: answer from the unique index instead of scanning names too.
        return Q(external_id=term)
    words = term.split()
    if len(words) > 1:
        # "Asha R" finds Asha Rao: the first word starts the first name, the rest the last name.
        # On its own (not OR-ed with the one-word forms) SQLite can still use the name index.
        return Q(first_name__istartswith=words[0], last_name__istartswith=" ".join(words[1:]))
    return (
        _prefix("email", lowered) | Q(first_name__istartswith=term) | Q(last_name__istartswith=term)
    )


# Everyone's count, cached: the customers list and the shares on the segment list show one number,
# and neither counts a big base more than once a minute.
CUSTOMERS_TOTAL_CACHE_KEY = "customers:total"
CUSTOMERS_TOTAL_CACHE_SECONDS = 60


def customer_total() -> int:
    """How many customers there are, counted at most once a minute."""
    total = cache.get_or_set(
        CUSTOMERS_TOTAL_CACHE_KEY, Customer.objects.count, CUSTOMERS_TOTAL_CACHE_SECONDS
    )
    return cast(int, total)


def customer_list(
    *,
    search: str = "",
    city: str = "",
    country: str = "",
    tag: str = "",
    spend_min: Decimal | None = None,
    spend_max: Decimal | None = None,
    has_orders: bool | None = None,
    ordering: str = DEFAULT_CUSTOMER_ORDERING,
) -> QuerySet[Customer]:
    """Customers matching the search and filters, in a whitelisted order, with their tags."""
    if ordering not in CUSTOMER_ORDERINGS:
        choices = ", ".join(CUSTOMER_ORDERINGS)
        raise ApplicationError(
            f"Unknown ordering {ordering!r}; use one of {choices}.", field="ordering"
        )
    customers = Customer.objects.all()
    if search.strip():
        customers = customers.filter(_search(search.strip()))
    if city.strip():
        customers = customers.filter(city=city.strip())
    if country.strip():
        customers = customers.filter(country=country.strip())
    if tag.strip():
        # IN (the tag's customers) reads the (name, customer) index once; a correlated EXISTS
        # would probe it for every customer when counting.
        tagged = CustomerTag.objects.filter(name=tag.strip().lower()).values("customer_id")
        customers = customers.filter(pk__in=tagged)
    if spend_min is not None:
        customers = customers.filter(total_spend__gte=spend_min)
    if spend_max is not None:
        customers = customers.filter(total_spend__lte=spend_max)
    if has_orders is not None:
        customers = (
            customers.filter(order_count__gt=0) if has_orders else customers.filter(order_count=0)
        )
    return customers.prefetch_related(_tags_prefetch()).order_by(*CUSTOMER_ORDERINGS[ordering])


def _tags_prefetch() -> Prefetch:
    return Prefetch("tag_rows", queryset=CustomerTag.objects.order_by("name"))


def customer_get(*, customer_id: int) -> Customer:
    """One customer with their tags; NotFoundError if there is none."""
    try:
        return Customer.objects.prefetch_related(_tags_prefetch()).get(pk=customer_id)
    except Customer.DoesNotExist:
        raise NotFoundError(f"Customer {customer_id} does not exist.") from None


def customer_tags(customer: Customer) -> list[str]:
    """The customer's tag names, sorted (served from the prefetch of the selectors above)."""
    return [tag.name for tag in customer.tag_rows.all()]


def customer_orders(*, customer_id: int) -> QuerySet[Order]:
    """Every order of the customer, of any status, newest first (for paging through them)."""
    return Order.objects.filter(customer_id=customer_id).order_by("-ordered_at", "-id")


def customer_recent_orders(*, customer_id: int, limit: int = RECENT_ORDERS) -> list[Order]:
    """The customer's latest orders of any status, newest first."""
    return list(customer_orders(customer_id=customer_id)[:limit])


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def order_list(
    *,
    customer_id: int | None = None,
    customer_external_id: str = "",
    status: str = "",
    ordered_from: date | None = None,
    ordered_to: date | None = None,
    ordering: str = DEFAULT_ORDER_ORDERING,
) -> QuerySet[Order]:
    """Orders matching the filters (dates inclusive, in the configured time zone)."""
    if ordering not in ORDER_ORDERINGS:
        choices = ", ".join(ORDER_ORDERINGS)
        raise ApplicationError(
            f"Unknown ordering {ordering!r}; use one of {choices}.", field="ordering"
        )
    if status and status not in Order.Status.values:
        choices = ", ".join(Order.Status.values)
        raise ApplicationError(f"Unknown status {status!r}; use one of {choices}.", field="status")
    # select_related, not an annotation: the page still gets the customer in the same query,
    # while count() drops the join (with it, counting 9M orders took 49 s on SQLite at 10M).
    orders = Order.objects.select_related("customer")
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if customer_external_id.strip():
        orders = orders.filter(customer__external_id=customer_external_id.strip())
    if status:
        orders = orders.filter(status=status)
    if ordered_from is not None:
        orders = orders.filter(ordered_at__gte=_day_start(ordered_from))
    if ordered_to is not None:
        orders = orders.filter(ordered_at__lt=_day_start(ordered_to) + timedelta(days=1))
    return orders.order_by(*ORDER_ORDERINGS[ordering])


def tag_name_list() -> list[str]:
    """Every tag in use, for filter menus."""
    return list(CustomerTag.objects.order_by("name").values_list("name", flat=True).distinct())


def customer_city_list() -> list[str]:
    return list(
        Customer.objects.exclude(city="").order_by("city").values_list("city", flat=True).distinct()
    )


def customer_country_list() -> list[str]:
    return list(
        Customer.objects.exclude(country="")
        .order_by("country")
        .values_list("country", flat=True)
        .distinct()
    )


class ValueSuggestions(TypedDict):
    """The most common values of a field, most common first; `complete` when none were left out
    (so a value missing from the list is known to be unused)."""

    values: list[str]
    complete: bool


def _most_common(queryset: QuerySet[Any], column: str, limit: int) -> ValueSuggestions:
    # One more than asked says whether the list is complete. GROUP BY reads the column's index
    # (customer_city / customer_tag_name_idx) rather than the rows.
    rows = list(
        queryset.values(column)
        .annotate(uses=Count("*"))
        .order_by("-uses", column)
        .values_list(column, flat=True)[: limit + 1]
    )
    return {"values": rows[:limit], "complete": len(rows) <= limit}


def customer_city_suggestions(*, limit: int = SUGGESTIONS_LIMIT) -> ValueSuggestions:
    """The most common cities, for inputs that suggest them; cached briefly (a scan of the city
    index costs a fraction of a second at a million customers)."""
    return cast(
        ValueSuggestions,
        cache.get_or_set(
            f"customers:city-suggestions:{limit}",
            lambda: _most_common(Customer.objects.exclude(city=""), "city", limit),
            SUGGESTIONS_CACHE_SECONDS,
        ),
    )


def customer_tag_suggestions(*, limit: int = SUGGESTIONS_LIMIT) -> ValueSuggestions:
    """The most used tags (stored lower-case), for inputs that suggest them; cached briefly."""
    return cast(
        ValueSuggestions,
        cache.get_or_set(
            f"customers:tag-suggestions:{limit}",
            lambda: _most_common(CustomerTag.objects.all(), "name", limit),
            SUGGESTIONS_CACHE_SECONDS,
        ),
    )
