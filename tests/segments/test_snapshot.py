"""The columnar preview snapshot: same answers as SQL, kept exact by the updated_at watermark."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import segment_funnel, segment_preview
from minicrm.segments.snapshot import CustomerSnapshot, shared_snapshot
from tests.factories import CustomerFactory

RULES = parse_rules(
    {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gte", "value": 100},
            {"field": "tags", "operator": "has_none", "value": ["churn"]},
        ],
    }
)


@pytest.fixture
def loaded(db: None) -> CustomerSnapshot:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    for key, total in [("a", "50.00"), ("b", "150.00"), ("c", "999.99")]:
        CustomerFactory(
            external_id=key, total_spend=Decimal(total), order_count=1, last_order_at=moment
        )
    snapshot = CustomerSnapshot()
    snapshot.load()
    return snapshot


def test_preview_and_funnel_through_the_snapshot_equal_sql(loaded: CustomerSnapshot) -> None:
    CustomerTag.objects.create(customer=Customer.objects.get(external_id="c"), name="churn")
    loaded.load()
    assert segment_preview(rules=RULES, snapshot=loaded) == segment_preview(rules=RULES)
    assert segment_funnel(rules=RULES, snapshot=loaded) == segment_funnel(rules=RULES)
    assert segment_funnel(rules=RULES, snapshot=loaded)[1]["count"] == 1


def test_refresh_applies_changes_since_the_watermark(loaded: CustomerSnapshot) -> None:
    assert loaded.count(RULES, today=timezone.localdate()) == 2
    CustomerFactory(external_id="d", total_spend=Decimal("300.00"), order_count=2)
    Customer.objects.filter(external_id="a").update(
        total_spend=Decimal("100.00"), updated_at=timezone.now()
    )
    customer_c = Customer.objects.get(external_id="c")
    CustomerTag.objects.create(customer=customer_c, name="churn")
    Customer.objects.filter(pk=customer_c.pk).update(updated_at=timezone.now())
    loaded.refresh()
    today = timezone.localdate()
    assert loaded.count(RULES, today=today) == 3
    assert loaded.total() == 4
    keys = dict(Customer.objects.values_list("pk", "external_id"))
    assert {keys[pk] for pk in loaded.matching_ids(RULES, today=today)} == {"a", "b", "d"}
    assert [keys[pk] for pk in loaded.top_ids(RULES, today=today, limit=2)] == ["d", "b"]


def test_deleted_customers_leave_at_the_next_reconcile(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    Customer.objects.filter(external_id="b").delete()
    monkeypatch.setattr(snapshot_module, "RECONCILE_EVERY_SECONDS", -1.0)
    loaded.refresh()
    assert loaded.total() == 2
    assert loaded.count(RULES, today=timezone.localdate()) == 1


def test_a_large_change_reloads_everything(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "FULL_RELOAD_ABOVE", 1)
    CustomerFactory.create_batch(2, total_spend=Decimal("500.00"), order_count=1)
    loaded.refresh()
    assert loaded.total() == 5


def test_watermark_overlap_rereads_late_commits(loaded: CustomerSnapshot) -> None:
    # A row whose updated_at is older than the last refresh (its transaction committed late).
    loaded.refresh()
    late = timezone.now() - timedelta(seconds=30)
    CustomerFactory(external_id="late", total_spend=Decimal("700.00"), order_count=1)
    Customer.objects.filter(external_id="late").update(updated_at=late)
    loaded.refresh()
    assert loaded.count(RULES, today=timezone.localdate()) == 3


@pytest.mark.django_db
def test_shared_snapshot_is_off_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert segment_preview(rules=RULES)["count"] == 0
    monkeypatch.setattr(snapshot_module, "_shared", None)
    with override_settings(MINICRM_PREVIEW_SNAPSHOT=True):
        CustomerFactory(total_spend=Decimal("120.00"), order_count=1)
        # The first call starts loading in the background and answers from SQL meanwhile.
        monkeypatch.setattr(CustomerSnapshot, "load_in_background", CustomerSnapshot.load)
        assert shared_snapshot() is None
        shared = shared_snapshot()
        assert shared is not None
        assert segment_preview(rules=RULES)["count"] == 1


def _wait_for_loader(snapshot: CustomerSnapshot) -> None:
    for thread in threading.enumerate():
        if thread.name == "segment-snapshot":
            thread.join(timeout=30)
    assert not snapshot._loading


def test_a_failed_load_is_not_retried_until_the_pause_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshot = CustomerSnapshot()
    attempts: list[int] = []

    def broken_load() -> None:
        attempts.append(1)
        raise RuntimeError("DuckDB could not parse a stored date")

    monkeypatch.setattr(snapshot, "load", broken_load)
    snapshot.load_in_background()
    _wait_for_loader(snapshot)
    snapshot.load_in_background()  # at once again: previews keep using SQL, no second load
    _wait_for_loader(snapshot)
    assert len(attempts) == 1

    assert snapshot._failed_at is not None
    snapshot._failed_at -= snapshot_module.LOAD_RETRY_SECONDS + 1
    snapshot.load_in_background()
    _wait_for_loader(snapshot)
    assert len(attempts) == 2
    assert not snapshot.loaded


def test_a_refresh_that_fails_answers_from_sql_and_reloads(
    monkeypatch: pytest.MonkeyPatch, loaded: CustomerSnapshot, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(snapshot_module, "_shared", loaded)

    def broken_refresh() -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loaded, "refresh", broken_refresh)
    monkeypatch.setattr(loaded, "load_in_background", lambda: None)
    with override_settings(MINICRM_PREVIEW_SNAPSHOT=True):
        assert shared_snapshot() is None
        # The preview still answers, from SQL: customers b and c spent at least 100.
        assert segment_preview(rules=RULES)["count"] == 2

    assert not loaded.loaded
    assert "Refreshing the customer snapshot failed" in caplog.text
