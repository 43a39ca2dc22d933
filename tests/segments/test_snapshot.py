"""The columnar preview snapshot: same answers as SQL, kept exact by the updated_at watermark."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import (
    preview_snapshot_or_start_build,
    segment_funnel,
    segment_preview,
)
from minicrm.segments.snapshot import CustomerSnapshot, snapshot_state
from minicrm.segments.snapshot_file import generation_current
from tests.factories import CustomerFactory

from .snapshot_machine import snapshot_machine, snapshot_process_reset

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


@pytest.mark.parametrize("chunk", [1, 2, 50_000])
def test_deleted_customers_leave_at_the_next_reconcile(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    Customer.objects.filter(external_id="b").delete()
    monkeypatch.setattr(snapshot_module, "RECONCILE_EVERY_SECONDS", -1.0)
    monkeypatch.setattr(snapshot_module, "RECONCILE_CHUNK", chunk)
    loaded.refresh()
    assert loaded.total() == 2
    assert loaded.count(RULES, today=timezone.localdate()) == 1
    assert loaded.delta_rows == 1


def test_a_reconcile_with_nothing_deleted_compares_two_aggregates(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "RECONCILE_EVERY_SECONDS", -1.0)
    with CaptureQueriesContext(connection) as queries:
        loaded.refresh()
    # The changed customers, the top order id, and the count and sum of ids: no id list.
    assert len(queries) == 3
    assert loaded.delta_rows == 0


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


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    snapshot_machine(monkeypatch, settings, tmp_path / "snapshot")
    return tmp_path / "snapshot"


@pytest.mark.django_db
def test_the_shared_snapshot_is_off_unless_enabled(machine: Path, settings: Any) -> None:
    CustomerFactory(total_spend=Decimal("120.00"), order_count=1)
    settings.MINICRM_PREVIEW_SNAPSHOT = False
    assert preview_snapshot_or_start_build() is None
    assert generation_current(machine) is None  # nothing was built
    settings.MINICRM_PREVIEW_SNAPSHOT = True
    # The first call starts the build (here: at once) and answers from SQL meanwhile.
    assert preview_snapshot_or_start_build() is None
    shared = preview_snapshot_or_start_build()
    assert shared is not None
    assert shared.generation == generation_current(machine).name  # type: ignore[union-attr]
    assert segment_preview(rules=RULES)["count"] == 1
    assert snapshot_state()["state"] == "ready"


def test_a_failed_build_is_not_retried_until_the_pause_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot_process_reset(monkeypatch)
    attempts: list[int] = []

    def broken_build(*, directory: Path, replacing: str | None) -> bool:
        attempts.append(1)
        raise RuntimeError("DuckDB could not parse a stored date")

    def wait_for_builder() -> None:
        thread = snapshot_module._build_thread
        assert thread is not None
        thread.join(timeout=30)
        assert not thread.is_alive()

    monkeypatch.setattr(snapshot_module, "generation_build", broken_build)
    monkeypatch.setattr(snapshot_module, "BUILD_TRY_EVERY_SECONDS", 0.0)
    snapshot_module._build_start(tmp_path, replacing=None)
    wait_for_builder()
    snapshot_module._build_start(tmp_path, replacing=None)  # at once again: no second build
    wait_for_builder()
    assert len(attempts) == 1
    with override_settings(MINICRM_SNAPSHOT_DIR=tmp_path):
        assert snapshot_state()["state"] == "failed"

    assert snapshot_module._build_failed_at is not None
    snapshot_module._build_failed_at -= snapshot_module.LOAD_RETRY_SECONDS + 1
    snapshot_module._build_start(tmp_path, replacing=None)
    wait_for_builder()
    assert len(attempts) == 2


@pytest.mark.django_db
def test_a_refresh_that_fails_answers_from_sql_and_reopens(
    machine: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key, total in [("a", "50.00"), ("b", "150.00"), ("c", "999.99")]:
        CustomerFactory(external_id=key, total_spend=Decimal(total), order_count=1)
    assert preview_snapshot_or_start_build() is None  # builds
    shared = preview_snapshot_or_start_build()
    assert shared is not None

    def broken_refresh(*, rebuild: bool = True) -> bool:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(shared, "refresh", broken_refresh)
    assert preview_snapshot_or_start_build() is None
    # The preview still answers, from SQL: customers b and c spent at least 100.
    assert segment_preview(rules=RULES)["count"] == 2
    assert "Refreshing the customer snapshot failed" in caplog.text
    # The next use opens the generation afresh (a new copy, not the broken one).
    reopened = preview_snapshot_or_start_build()
    assert reopened is not None
    assert reopened is not shared
    assert reopened.count(RULES, today=timezone.localdate()) == 2
