"""Segment writes: validation, unique names, size points enqueued after commit."""

from datetime import date

import pytest
from django.test import TestCase

from minicrm.accounts.models import User
from minicrm.core.errors import ApplicationError, ConflictError, NotFoundError
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import (
    rules_hash,
    segment_create,
    segment_delete,
    segment_size_record,
    segment_sizes_record_all,
    segment_update,
)
from tests.factories import CustomerFactory

BIG = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gte", "value": 100}]}


def test_create_stores_canonical_rules_and_counts_after_commit(
    marketer: User, django_capture_on_commit_callbacks: type[TestCase.captureOnCommitCallbacks]
) -> None:
    CustomerFactory(total_spend=150, order_count=1)
    CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        segment = segment_create(
            name="  Big spenders ",
            description=" Over 100 ",
            rules=parse_rules(BIG),
            created_by=marketer,
        )
    assert len(callbacks) == 1
    segment.refresh_from_db()
    assert segment.name == "Big spenders"
    assert segment.description == "Over 100"
    assert segment.created_by == marketer
    assert segment.rules == {
        "match": "all",
        "conditions": [{"field": "total_spend", "operator": "gte", "value": 100}],
    }
    assert segment.last_count == 1
    assert list(SegmentSize.objects.values_list("size", flat=True)) == [1]


@pytest.mark.django_db
def test_create_rejects_bad_names_without_saving(marketer: User) -> None:
    with pytest.raises(ApplicationError, match="needs a name"):
        segment_create(name="  ", rules=parse_rules(BIG), created_by=marketer)
    with pytest.raises(ApplicationError, match="at most 120"):
        segment_create(name="x" * 121, rules=parse_rules(BIG), created_by=marketer)
    segment_create(name="VIP", rules=parse_rules(BIG), created_by=marketer)
    with pytest.raises(ConflictError, match='"vip" already exists'):
        segment_create(name="vip", rules=parse_rules(BIG), created_by=marketer)
    assert list(Segment.objects.values_list("name", flat=True)) == ["VIP"]


def test_update_counts_again_only_when_rules_change(
    marketer: User, django_capture_on_commit_callbacks: type[TestCase.captureOnCommitCallbacks]
) -> None:
    segment = segment_create(name="A", rules=parse_rules(BIG), created_by=marketer)
    with django_capture_on_commit_callbacks(execute=False) as unchanged:
        segment_update(segment_id=segment.pk, name="B", rules=parse_rules(BIG))
    assert unchanged == []
    with django_capture_on_commit_callbacks(execute=False) as changed:
        segment = segment_update(
            segment_id=segment.pk,
            rules=parse_rules({"match": "any", "conditions": []}),
            description="All",
        )
    assert len(changed) == 1
    segment.refresh_from_db()
    assert (segment.name, segment.description, segment.rules) == (
        "B",
        "All",
        {"match": "any", "conditions": []},
    )


@pytest.mark.django_db
def test_update_failures_change_nothing(marketer: User) -> None:
    first = segment_create(name="First", rules=parse_rules(BIG), created_by=marketer)
    second = segment_create(name="Second", rules=parse_rules(BIG), created_by=marketer)
    with pytest.raises(ConflictError):
        segment_update(segment_id=second.pk, name="FIRST", description="changed")
    with pytest.raises(NotFoundError):
        segment_update(segment_id=second.pk + 100, name="Ghost")
    second.refresh_from_db()
    assert (second.name, second.description, second.rules) == ("Second", "", BIG)
    assert first.name == "First"
    # Renaming a segment to its own name (another case) is allowed.
    assert segment_update(segment_id=first.pk, name="FIRST").name == "FIRST"


@pytest.mark.django_db
def test_delete(marketer: User) -> None:
    segment = segment_create(name="Gone", rules=parse_rules(BIG), created_by=marketer)
    segment_delete(segment_id=segment.pk)
    assert not Segment.objects.exists()
    with pytest.raises(NotFoundError):
        segment_delete(segment_id=segment.pk)


@pytest.mark.django_db
def test_size_record_is_idempotent_per_day_and_rules(marketer: User) -> None:
    segment = segment_create(name="Big", rules=parse_rules(BIG), created_by=marketer)
    CustomerFactory(total_spend=150, order_count=1)
    day = date(2025, 6, 1)
    segment_size_record(segment_id=segment.pk, today=day)
    CustomerFactory(total_spend=500, order_count=2)
    point = segment_size_record(segment_id=segment.pk, today=day)
    assert point is not None
    assert list(SegmentSize.objects.values_list("day", "size")) == [(day, 2)]
    segment_update(segment_id=segment.pk, rules=parse_rules({"match": "all", "conditions": []}))
    segment_size_record(segment_id=segment.pk, today=day)
    segment_size_record(segment_id=segment.pk, today=date(2025, 6, 2))
    assert sorted(SegmentSize.objects.values_list("day", "size", "rules_hash")) == [
        (day, 2, rules_hash(BIG)),
        (day, 2, rules_hash({"match": "all", "conditions": []})),
        (date(2025, 6, 2), 2, rules_hash({"match": "all", "conditions": []})),
    ]
    segment.refresh_from_db()
    assert segment.last_count == 2
    assert segment.last_counted_at is not None
    assert segment_size_record(segment_id=segment.pk + 1, today=day) is None


@pytest.mark.django_db
def test_record_all(marketer: User) -> None:
    segment_create(name="One", rules=parse_rules(BIG), created_by=marketer)
    segment_create(
        name="Two", rules=parse_rules({"match": "all", "conditions": []}), created_by=marketer
    )
    CustomerFactory()
    assert segment_sizes_record_all(today=date(2025, 1, 1)) == 2
    assert sorted(SegmentSize.objects.values_list("segment__name", "size")) == [
        ("One", 0),
        ("Two", 1),
    ]
