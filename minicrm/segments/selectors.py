"""Reads for segments: live preview, funnel, members, lists and size history."""

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    OrderBy,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast

from minicrm.core.errors import NotFoundError
from minicrm.core.limits import MAX_RULE_TREE_LIST_ITEMS
from minicrm.core.replica import replica_reads
from minicrm.core.statement_timeout import statement_timeout
from minicrm.customers.models import Customer, CustomerTag

from .compiler import compile_rules, customers_matching, today_in_zone
from .describe import condition_describe, rules_describe
from .models import Segment, SegmentSize
from .rules import ATTRIBUTE_KEY, RuleGroup, parse_rules, rule_tree_list_items
from .snapshot import CustomerSnapshot, snapshot_ready_or_start_build

SAMPLE_SIZE = 10
SAMPLE_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "city",
    "total_spend",
    "order_count",
    "last_order_at",
)
EXPORT_COLUMNS = (
    "id",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    # Whom a file may be used for: consent as true/false, the unsubscribe date or empty.
    "marketing_consent",
    "unsubscribed_at",
    "city",
    "country",
    "signed_up_at",
    "total_spend",
    "order_count",
    "first_order_at",
    "last_order_at",
)

__all__ = [
    "rules_describe",
    "segment_export_rows",
    "segment_funnel",
    "segment_get",
    "segment_list",
    "segment_list_page_rows",
    "segment_members",
    "segment_preview",
    "segment_rules",
    "segment_size_history",
    "segment_size_trends",
]


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name")


# The list's sort keys (the URL's ?sort=) and the columns they order by; "-" is high to low.
# Segments never counted (no size, no trend) come last whichever way.
SEGMENT_LIST_SORTS = ("name", "-name", "size", "-size", "counted", "-counted", "change", "-change")
TREND_DAYS = 30


def _trend_end(since: date, column: str, *, latest: bool) -> Subquery:
    """A segment's `column` on the first (or last) counted day since `since`, that day's latest
    count."""
    sizes = SegmentSize.objects.filter(segment=OuterRef("pk"), day__gte=since).order_by(
        "-day" if latest else "day", "-counted_at", "-pk"
    )
    return Subquery(sizes.values(column)[:1])


def _trend_change(since: date) -> Case:
    """The last counted size since `since` minus the first, None with fewer than two days (no
    trend); the sizes cast to signed, so that MariaDB can subtract one unsigned from another."""
    last = Cast(_trend_end(since, "size", latest=True), BigIntegerField())
    first = Cast(_trend_end(since, "size", latest=False), BigIntegerField())
    return Case(
        When(trend_first_day__lt=F("trend_last_day"), then=last - first),
        default=None,
        output_field=BigIntegerField(),
    )


def _sort_ordering(sort: str) -> list[OrderBy | str]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "name":
        return ["-name_key" if descending else "name_key", "pk"]
    columns = {"size": "last_count", "counted": "last_counted_at", "change": "trend_change"}
    if key not in columns:
        raise ValueError(f"Unknown segment sort {sort!r}; use one of {SEGMENT_LIST_SORTS}.")
    column = F(columns[key])
    first = column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
    return [first, "name_key", "pk"]


def segment_list_page_rows(
    *, search: str = "", sort: str = "name", today: date | None = None
) -> QuerySet[Segment]:
    """Segments whose name contains `search` (any case), in a sort of SEGMENT_LIST_SORTS.

    Sorting by change annotates `trend_change`: the size on the last counted day of the last
    TREND_DAYS minus the size on the first (what segment_size_trends draws), None with fewer than
    two counted days.
    """
    if sort not in SEGMENT_LIST_SORTS:
        raise ValueError(f"Unknown segment sort {sort!r}; use one of {SEGMENT_LIST_SORTS}.")
    segments = Segment.objects.all()
    if search.strip():
        segments = segments.filter(name__icontains=search.strip())
    if sort.lstrip("-") == "change":
        since = (today or today_in_zone()) - timedelta(days=TREND_DAYS - 1)
        segments = segments.annotate(
            trend_first_day=_trend_end(since, "day", latest=False),
            trend_last_day=_trend_end(since, "day", latest=True),
        ).annotate(trend_change=_trend_change(since))
    return segments.order_by(*_sort_ordering(sort))


def segment_size_trends(
    *, segment_ids: list[int], days: int = TREND_DAYS, today: date | None = None
) -> dict[int, list[int]]:
    """Each segment's sizes over the last `days` days, oldest first, one per counted day (a day
    counted twice keeps its latest), in one query whatever the number of segments."""
    since = (today or today_in_zone()) - timedelta(days=days - 1)
    latest: dict[int, dict[date, int]] = {segment_id: {} for segment_id in segment_ids}
    for segment_id, day, size in (
        SegmentSize.objects.filter(segment_id__in=segment_ids, day__gte=since)
        .order_by("segment_id", "day", "counted_at", "pk")
        .values_list("segment_id", "day", "size")
    ):
        latest[segment_id][day] = size
    return {segment_id: list(sizes.values()) for segment_id, sizes in latest.items()}


def segment_get(*, segment_id: int) -> Segment:
    try:
        return segment_list().get(pk=segment_id)
    except Segment.DoesNotExist:
        raise NotFoundError("No such segment.") from None


def segments_for_customer(*, customer_id: int, limit: int = 200) -> list[Segment]:
    """The saved segments one customer is in, answered by queries over that customer alone:
    as few as keep each query within one rule tree's budget of list values."""
    segments = list(segment_list()[:limit])
    batches: list[list[tuple[Segment, RuleGroup]]] = [[]]
    values = 0
    for segment in segments:
        rules = segment_rules(segment)
        size = rule_tree_list_items(rules)
        if batches[-1] and values + size > MAX_RULE_TREE_LIST_ITEMS:
            batches.append([])
            values = 0
        batches[-1].append((segment, rules))
        values += size
    found: list[Segment] = []
    for batch in batches:
        if not batch:
            continue
        flags = {
            f"in_{segment.pk}": Case(
                When(compile_rules(rules), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
            for segment, rules in batch
        }
        row = Customer.objects.filter(pk=customer_id).annotate(**flags).values(*flags).first()
        if row is None:
            return []
        found.extend(segment for segment, _rules in batch if row[f"in_{segment.pk}"])
    return found


def segment_rules(segment: Segment) -> RuleGroup:
    """A saved segment's rules as a typed tree (they were validated when saved)."""
    return parse_rules(segment.rules)


def _sample_row(row: dict[str, Any]) -> dict[str, Any]:
    first, last = row.pop("first_name"), row.pop("last_name")
    row["name"] = f"{first} {last}".strip()
    return row


def preview_snapshot_or_start_build() -> CustomerSnapshot | None:
    """The columnar snapshot when enabled (MINICRM_PREVIEW_SNAPSHOT) and ready, else None (use
    SQL). Never waits: while no copy is ready it starts building one in a background thread."""
    if not settings.MINICRM_PREVIEW_SNAPSHOT:
        return None
    return snapshot_ready_or_start_build()


def _sample_rows(customers: QuerySet[Customer]) -> list[dict[str, Any]]:
    return [_sample_row(row) for row in customers.values(*SAMPLE_FIELDS)[:SAMPLE_SIZE]]


def segment_sample(
    *, rules: RuleGroup, today: date | None = None, snapshot: CustomerSnapshot | None = None
) -> list[dict[str, Any]]:
    """Up to 10 matching customers, biggest spenders first (dicts with id, name, email, ...)."""
    day = today or today_in_zone()
    if snapshot is None:
        matching = customers_matching(rules, today=day)
        return _sample_rows(matching.order_by("-total_spend", "-id"))
    ids = snapshot.top_ids(rules, today=day, limit=SAMPLE_SIZE)
    rank = Case(
        *(When(pk=pk, then=Value(i)) for i, pk in enumerate(ids)), output_field=IntegerField()
    )
    return _sample_rows(Customer.objects.filter(pk__in=ids).order_by(rank)) if ids else []


def segment_preview(
    *, rules: RuleGroup, today: date | None = None, snapshot: CustomerSnapshot | None = None
) -> dict[str, Any]:
    """`{"count", "total_customers", "sample"}` for rules being built (nothing is saved).

    Uses the columnar snapshot when one is given or enabled in settings (exact, refreshed
    just before), the SQL compiler otherwise.
    """
    day = today or today_in_zone()
    snapshot = snapshot or preview_snapshot_or_start_build()
    if snapshot is not None:
        return {
            "count": snapshot.count(rules, today=day),
            "total_customers": snapshot.total(),
            "sample": segment_sample(rules=rules, today=day, snapshot=snapshot),
        }
    with replica_reads():
        return {
            "count": customers_matching(rules, today=day).count(),
            "total_customers": Customer.objects.count(),
            "sample": segment_sample(rules=rules, today=day),
        }


def segment_funnel(
    *, rules: RuleGroup, today: date | None = None, snapshot: CustomerSnapshot | None = None
) -> list[dict[str, Any]]:
    """How many customers remain after each top-level condition is added, in one scan.

    Step i counts customers matching the first i top-level conditions combined with the
    group's own `all`/`any`; its label is that condition (or nested group) in words.
    """
    day = today or today_in_zone()
    labels: list[str] = []
    for node in rules.conditions:
        if isinstance(node, RuleGroup):
            labels.append(rules_describe(RuleGroup(match="all", conditions=[node])))
        else:
            labels.append(condition_describe(node))
    if not labels:
        return []
    snapshot = snapshot or preview_snapshot_or_start_build()
    if snapshot is not None:
        counts = snapshot.funnel_counts(rules, today=day)
    else:
        with replica_reads():
            counts = _funnel_counts(rules, today=day)
    return [{"label": label, "count": count} for label, count in zip(labels, counts, strict=True)]


def _funnel_counts(rules: RuleGroup, *, today: date) -> list[int]:
    """The funnel's counts in one scan, each condition once in the SQL (counting each prefix
    separately would repeat the first condition in every step: quadratic in the rule tree).

    Each customer gets the index of the first top-level condition it fails (`all`) or passes
    (`any`); step i of `all` counts those that fail none up to i, step i of `any` those that
    pass one up to i.
    """
    if not rules.conditions:
        return []
    steps = [
        compile_rules(RuleGroup(match="all", conditions=[node]), today=today)
        for node in rules.conditions
    ]
    first = Case(
        *(When(~q if rules.match == "all" else q, then=Value(i)) for i, q in enumerate(steps)),
        default=Value(len(steps)),
        output_field=IntegerField(),
    )
    histogram = dict(
        Customer.objects.annotate(first=first)
        .values("first")
        .annotate(customers=Count("pk"))
        .order_by()
        .values_list("first", "customers")
    )
    if rules.match == "all":
        return [sum(n for at, n in histogram.items() if at > i) for i in range(len(steps))]
    return [sum(n for at, n in histogram.items() if at <= i) for i in range(len(steps))]


def segment_members(
    *, segment: Segment | None = None, rules: RuleGroup | None = None, today: date | None = None
) -> QuerySet[Customer]:
    """The customers of a saved segment (or of rules), ordered by id for stable paging."""
    if rules is None:
        if segment is None:
            raise ValueError("segment_members needs a segment or rules")
        rules = segment_rules(segment)
    return customers_matching(rules, today=today).order_by("id")


def segment_export_rows(
    *,
    segment: Segment,
    chunk_size: int = 2000,
    today: date | None = None,
    timeout_seconds: float | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Every member as a row of EXPORT_COLUMNS plus their tags, in constant memory.

    Pages by id (keyset), so no database cursor stays open between chunks and no driver
    buffers the whole result (PyMySQL would). Each chunk's statements run under
    `timeout_seconds` when given (StatementTimeoutError past it).
    """
    members = segment_members(segment=segment, today=today or today_in_zone())
    last_id = 0
    while True:
        with (
            replica_reads(),
            statement_timeout(timeout_seconds) if timeout_seconds else nullcontext(),
        ):
            chunk = list(members.filter(id__gt=last_id).values_list(*EXPORT_COLUMNS)[:chunk_size])
            if not chunk:
                return
            ids = [row[0] for row in chunk]
            tags: dict[int, list[str]] = {}
            for customer_id, name in (
                CustomerTag.objects.filter(customer_id__in=ids)
                .order_by("customer_id", "name")
                .values_list("customer_id", "name")
            ):
                tags.setdefault(customer_id, []).append(name)
        for row in chunk:
            yield (*(_export_value(value) for value in row), " ".join(tags.get(row[0], [])))
        last_id = ids[-1]


def _export_value(value: Any) -> Any:
    # "true"/"false" rather than Python's "True"/"False": what spreadsheets and tools read.
    return ("true" if value else "false") if isinstance(value, bool) else value


def segment_size_history(*, segment_id: int, days: int = 90) -> list[dict[str, Any]]:
    """`[{"date", "size"}]` for the last `days` days, oldest first, one point per counted day.

    A day with several points (the rules changed) keeps the latest.
    """
    since = today_in_zone() - timedelta(days=days - 1)
    latest: dict[date, int] = {}
    for day, size in (
        SegmentSize.objects.filter(segment_id=segment_id, day__gte=since)
        .order_by("day", "counted_at", "pk")
        .values_list("day", "size")
    ):
        latest[day] = size
    return [{"date": day, "size": size} for day, size in latest.items()]


# --- Custom attributes for the rule builder --------------------------------------------------
# A sample, not a scan: the latest customers that have attributes, bounded whatever the base.
ATTRIBUTE_SAMPLE_CUSTOMERS = 2_000
ATTRIBUTE_KEYS_SHOWN = 50
ATTRIBUTE_EXAMPLES = 5


def _attribute_type(values: list[Any]) -> str:
    """ "boolean" if every value is true/false, "number" if every value is a number, else
    "text" (what a rule on the key should compare by default)."""
    present = [value for value in values if value is not None and value != ""]
    if present and all(isinstance(value, bool) for value in present):
        return "boolean"
    if present and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in present
    ):
        return "number"
    return "text"


def attribute_keys_sample(*, customers: int = ATTRIBUTE_SAMPLE_CUSTOMERS) -> list[dict[str, Any]]:
    """The attribute keys found in a sample of customers: `[{"key", "type", "examples"}]`, the
    most common first; keys a rule cannot name (rules.ATTRIBUTE_KEY) are left out."""
    counts: dict[str, int] = {}
    values: dict[str, list[Any]] = {}
    sample = (
        Customer.objects.exclude(attributes={})
        .order_by("-id")
        .values_list("attributes", flat=True)[:customers]
    )
    for attributes in sample:
        if not isinstance(attributes, dict):
            continue
        for key, value in attributes.items():
            if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
                continue
            counts[key] = counts.get(key, 0) + 1
            if isinstance(value, str | int | float | bool) or value is None:
                values.setdefault(key, []).append(value)
    keys = sorted(counts, key=lambda key: (-counts[key], key))[:ATTRIBUTE_KEYS_SHOWN]
    found = []
    for key in keys:
        seen = values.get(key, [])
        examples = list(dict.fromkeys(str(value) for value in seen if value not in (None, "")))
        found.append(
            {
                "key": key,
                "type": _attribute_type(seen),
                "examples": examples[:ATTRIBUTE_EXAMPLES],
            }
        )
    return found
