"""Reads for segments: live preview, funnel, members, lists and size history."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from minicrm.core.errors import NotFoundError
from minicrm.customers.models import Customer, CustomerTag

from .compiler import compile_rules, customers_matching, today_in_zone
from .describe import condition_describe, rules_describe
from .models import Segment, SegmentSize
from .rules import RuleGroup, parse_rules

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
    "segment_members",
    "segment_preview",
    "segment_rules",
    "segment_size_history",
]


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name")


def segment_get(*, segment_id: int) -> Segment:
    try:
        return segment_list().get(pk=segment_id)
    except Segment.DoesNotExist:
        raise NotFoundError("No such segment.") from None


def segment_rules(segment: Segment) -> RuleGroup:
    """A saved segment's rules as a typed tree (they were validated when saved)."""
    return parse_rules(segment.rules)


def _sample_row(row: dict[str, Any]) -> dict[str, Any]:
    first, last = row.pop("first_name"), row.pop("last_name")
    row["name"] = f"{first} {last}".strip()
    return row


def segment_sample(*, rules: RuleGroup, today: date | None = None) -> list[dict[str, Any]]:
    """Up to 10 matching customers, biggest spenders first (dicts with id, name, email, ...)."""
    rows = (
        customers_matching(rules, today=today)
        .order_by("-total_spend", "-id")
        .values(*SAMPLE_FIELDS)[:SAMPLE_SIZE]
    )
    return [_sample_row(row) for row in rows]


def segment_preview(*, rules: RuleGroup, today: date | None = None) -> dict[str, Any]:
    """`{"count", "total_customers", "sample"}` for rules being built (nothing is saved)."""
    return {
        "count": customers_matching(rules, today=today).count(),
        "total_customers": Customer.objects.count(),
        "sample": segment_sample(rules=rules, today=today),
    }


def segment_funnel(*, rules: RuleGroup, today: date | None = None) -> list[dict[str, Any]]:
    """How many customers remain after each top-level condition is added, in one scan.

    Step i counts customers matching the first i top-level conditions combined with the
    group's own `all`/`any`; its label is that condition (or nested group) in words.
    """
    day = today or today_in_zone()
    steps: list[tuple[str, Q]] = []
    for index, node in enumerate(rules.conditions):
        prefix = RuleGroup(match=rules.match, conditions=rules.conditions[: index + 1])
        if isinstance(node, RuleGroup):
            label = rules_describe(RuleGroup(match="all", conditions=[node]))
        else:
            label = condition_describe(node)
        steps.append((label, compile_rules(prefix, today=day)))
    if not steps:
        return []
    counts = {
        f"step_{i}": Count("pk", filter=q) if q else Count("pk") for i, (_, q) in enumerate(steps)
    }
    totals = Customer.objects.aggregate(**counts)
    return [{"label": label, "count": totals[f"step_{i}"]} for i, (label, _) in enumerate(steps)]


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
    *, segment: Segment, chunk_size: int = 2000, today: date | None = None
) -> Iterator[tuple[Any, ...]]:
    """Every member as a row of EXPORT_COLUMNS plus their tags, in constant memory.

    Pages by id (keyset), so no database cursor stays open between chunks and no driver
    buffers the whole result (PyMySQL would).
    """
    members = segment_members(segment=segment, today=today or today_in_zone())
    last_id = 0
    while True:
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
            yield (*row, " ".join(tags.get(row[0], [])))
        last_id = ids[-1]


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
