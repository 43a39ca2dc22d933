"""The machine's snapshot generations in one process: no request waits for a build, a restart
reuses the file, a damaged file falls back to SQL and is rebuilt, the delta is compacted into
the next generation, and too many changes for a delta mean SQL until a new one is built."""

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.compiler import customers_matching
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import preview_snapshot_or_start_build
from minicrm.segments.snapshot import CustomerSnapshot, snapshot_state
from minicrm.segments.snapshot_file import build_lock, generation_current
from tests.factories import CustomerFactory

from .snapshot_machine import snapshot_machine, snapshot_process_reset

RICH = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gte", "value": 100}]}
RULES = parse_rules(RICH)


def sql_count() -> int:
    return customers_matching(RULES, today=timezone.localdate()).count()


@pytest.fixture
def customers(db: None) -> None:
    for total in ("50.00", "150.00", "999.99"):
        CustomerFactory(total_spend=Decimal(total), order_count=1)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    snapshot_machine(monkeypatch, settings, tmp_path / "snapshot")
    return tmp_path / "snapshot"


def forget_the_process_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """As after a restart: the process holds no copy (the files stay)."""
    monkeypatch.setattr(snapshot_module, "_shared", None)


@pytest.mark.django_db
def test_a_preview_answers_from_sql_while_a_build_cannot_finish(
    api_client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    snapshot_process_reset(monkeypatch)
    settings.MINICRM_PREVIEW_SNAPSHOT = True
    settings.MINICRM_SNAPSHOT_DIR = tmp_path
    for total in ("50.00", "150.00", "999.99"):
        CustomerFactory(total_spend=Decimal(total), order_count=1)
    started, release = threading.Event(), threading.Event()

    def build_held_until_released(self: CustomerSnapshot) -> Any:
        started.set()
        # Bounded: a request that waited for this build would be let go after 10 s, and the
        # build thread would then have ended (asserted against below), never hang the test.
        release.wait(timeout=10)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(
        CustomerSnapshot, "generation_write_from_database", build_held_until_released
    )
    response = api_client.post(
        "/api/v1/segments/preview", json.dumps({"rules": RICH}), content_type="application/json"
    )
    builder = snapshot_module._build_thread
    assert builder is not None
    assert started.wait(timeout=10)
    # The answer came while the build was still held: the request did not wait for it.
    assert builder.is_alive()
    assert not release.is_set()
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert response.json()["total_customers"] == 3
    assert [step["count"] for step in response.json()["funnel"]] == [2]
    assert snapshot_state()["state"] == "building"
    release.set()
    builder.join(timeout=30)
    assert not builder.is_alive()


@pytest.mark.usefixtures("customers")
def test_a_restart_reuses_the_generation_on_disk(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert preview_snapshot_or_start_build() is None  # builds (at once, here)
    built = generation_current(machine)
    assert built is not None
    forget_the_process_copy(monkeypatch)

    def no_build(self: CustomerSnapshot) -> Any:
        raise AssertionError("a restart must not build")

    monkeypatch.setattr(CustomerSnapshot, "generation_write_from_database", no_build)
    reopened = preview_snapshot_or_start_build()
    assert reopened is not None
    assert reopened.generation == built.name
    assert reopened.count(RULES, today=timezone.localdate()) == sql_count() == 2
    assert reopened.delta_rows == 0  # the build's own rows are not read again
    state = snapshot_state()
    assert (state["state"], state["opened"], state["generation"]) == ("ready", True, built.name)


@pytest.mark.usefixtures("customers")
def test_a_restart_does_not_count_customers_deleted_since_the_generation(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deletions leave no watermark: the first refresh after opening the files looks for them
    (found at 1M by the load test: a restart counted deleted customers for 30 s)."""
    assert preview_snapshot_or_start_build() is None
    forget_the_process_copy(monkeypatch)
    Customer.objects.filter(total_spend=Decimal("999.99")).delete()

    reopened = preview_snapshot_or_start_build()
    assert reopened is not None
    assert reopened.count(RULES, today=timezone.localdate()) == sql_count() == 1


@pytest.mark.usefixtures("customers")
@pytest.mark.parametrize("damage", ["truncated", "missing", "pointer"])
def test_a_damaged_generation_answers_from_sql_and_is_rebuilt(
    machine: Path, monkeypatch: pytest.MonkeyPatch, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert preview_snapshot_or_start_build() is None
    built = generation_current(machine)
    assert built is not None
    forget_the_process_copy(monkeypatch)
    customers_file = machine / built.name / "customers.arrow"
    if damage == "truncated":
        customers_file.write_bytes(customers_file.read_bytes()[:100])
    elif damage == "missing":
        customers_file.unlink()
    else:
        (machine / "current.json").write_text("{not json", encoding="utf-8")

    # The damaged copy is not used (SQL answers) and a new generation replaces it.
    assert preview_snapshot_or_start_build() is None
    rebuilt = generation_current(machine)
    assert rebuilt is not None
    assert rebuilt.name != built.name
    snapshot = preview_snapshot_or_start_build()
    assert snapshot is not None
    assert snapshot.generation == rebuilt.name
    assert snapshot.count(RULES, today=timezone.localdate()) == 2
    if damage != "pointer":
        assert f"Opening snapshot generation {built.name} failed" in caplog.text


@pytest.mark.django_db
def test_compaction_writes_the_next_generation_from_the_delta(tmp_path: Path) -> None:
    for total in ("50.00", "150.00", "999.99"):
        CustomerFactory(total_spend=Decimal(total), order_count=1)
    snapshot = CustomerSnapshot(directory=tmp_path)
    snapshot.load()
    first = snapshot.generation
    CustomerFactory(total_spend=Decimal("300.00"), order_count=1)
    poorer = Customer.objects.get(total_spend=Decimal("150.00"))
    Customer.objects.filter(pk=poorer.pk).update(total_spend=0, updated_at=timezone.now())
    Customer.objects.filter(total_spend=Decimal("50.00")).delete()
    snapshot_module.RECONCILE_EVERY_SECONDS, every = -1.0, snapshot_module.RECONCILE_EVERY_SECONDS
    try:
        assert snapshot.refresh()
    finally:
        snapshot_module.RECONCILE_EVERY_SECONDS = every
    assert snapshot.delta_rows == 3  # a new customer, a changed one, a deleted one
    assert snapshot.compaction_due() is False  # the generation is seconds old, the delta small
    assert snapshot.compact()

    current = generation_current(tmp_path)
    assert current is not None
    assert current.name != first
    assert current.rows["customers"] == 3
    following = CustomerSnapshot(directory=tmp_path)
    following.attach(current)
    assert following.refresh()
    today = timezone.localdate()
    assert following.delta_rows == 0
    assert following.count(RULES, today=today) == sql_count() == 2
    assert following.total() == Customer.objects.count() == 3
    # The previous generation stays a while (a process may still map it); older ones go.
    snapshot.load()
    assert len(list(tmp_path.glob("gen-*"))) == 2


@pytest.mark.django_db
def test_compaction_is_left_to_the_process_holding_the_lock(tmp_path: Path) -> None:
    CustomerFactory(total_spend=Decimal("150.00"), order_count=1)
    snapshot = CustomerSnapshot(directory=tmp_path)
    snapshot.load()
    first = snapshot.generation
    with build_lock(tmp_path) as mine:
        assert mine
        assert snapshot.compact() is False
    current = generation_current(tmp_path)
    assert current is not None
    assert current.name == first


@pytest.mark.usefixtures("customers")
def test_too_many_changes_answer_from_sql_until_a_new_generation_is_built(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert preview_snapshot_or_start_build() is None
    first = preview_snapshot_or_start_build()
    assert first is not None
    monkeypatch.setattr(snapshot_module, "FULL_RELOAD_ABOVE", 1)
    built: list[str | None] = []

    def note_build(directory: Path, *, replacing: str | None) -> None:
        built.append(replacing)

    monkeypatch.setattr(snapshot_module, "_build_start", note_build)
    CustomerFactory.create_batch(2, total_spend=Decimal("500.00"), order_count=1)
    assert preview_snapshot_or_start_build() is None
    assert built == [first.generation]
    assert first.stale
    assert snapshot_state()["state"] != "ready" or snapshot_state()["opened"] is False

    monkeypatch.setattr(snapshot_module, "FULL_RELOAD_ABOVE", 50_000)
    snapshot_module.generation_build(directory=machine, replacing=first.generation)
    fresh = preview_snapshot_or_start_build()
    assert fresh is not None
    assert fresh.generation != first.generation
    assert fresh.count(RULES, today=timezone.localdate()) == sql_count() == 4


def test_the_state_without_any_generation_is_absent(settings: Any, tmp_path: Path) -> None:
    settings.MINICRM_SNAPSHOT_DIR = tmp_path
    state = snapshot_state()
    assert state["state"] == "absent"
    assert (state["generation"], state["delta_rows"], state["opened"]) == (None, 0, False)


@pytest.mark.usefixtures("customers")
def test_a_due_compaction_runs_in_the_background_and_the_process_switches(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert preview_snapshot_or_start_build() is None
    first = preview_snapshot_or_start_build()
    assert first is not None
    assert not first.compaction_due()  # nothing changed
    monkeypatch.setattr(snapshot_module, "COMPACT_AFTER_SECONDS", 0.0)
    assert preview_snapshot_or_start_build() is first
    assert snapshot_module._compact_thread is None  # an empty delta is not compacted

    CustomerFactory(total_spend=Decimal("700.00"), order_count=1)
    assert preview_snapshot_or_start_build() is first  # answers at once, compacts meanwhile
    compactor = snapshot_module._compact_thread
    assert compactor is not None
    compactor.join(timeout=30)
    assert not compactor.is_alive()
    current = generation_current(machine)
    assert current is not None
    assert current.name != first.generation
    switched = preview_snapshot_or_start_build()
    assert switched is not None
    assert switched.generation == current.name
    assert switched.count(RULES, today=timezone.localdate()) == sql_count() == 3


@pytest.mark.django_db
def test_the_sample_from_the_spend_order_equals_a_sort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generation holds customers biggest spenders first; the sample's top ids taken from
    its first rows in growing slices (without the changed customers, merged with the delta)
    equal a sort of every match, with many small record batches and slices, and rare tags in
    the tags table."""
    monkeypatch.setattr(snapshot_module, "BATCH_ROWS", 7)
    monkeypatch.setattr(snapshot_module, "TOP_FIRST_SLICE_ROWS", 3)
    monkeypatch.setattr(snapshot_module, "TAG_BITS", 1)
    spends = [Decimal(n % 23) * 10 for n in range(240)]  # many ties
    customers = [CustomerFactory(total_spend=spend, order_count=1) for spend in spends]
    for index, customer in enumerate(customers):
        for name in ("common", "rare")[: 1 + (index % 5 == 0)]:
            CustomerTag.objects.create(customer=customer, name=name)
    snapshot = CustomerSnapshot(directory=tmp_path)
    snapshot.load()
    assert snapshot.manifest is not None
    assert snapshot.manifest.customers_by_spend
    rules = [
        RULES,
        parse_rules({"match": "all", "conditions": []}),
        parse_rules(
            {
                "match": "any",
                "conditions": [{"field": "tags", "operator": "has_any", "value": ["rare"]}],
            }
        ),
        parse_rules(
            {
                "match": "all",
                "conditions": [
                    {"field": "tags", "operator": "has_none", "value": ["rare"]},
                    {"field": "total_spend", "operator": "lt", "value": 200},
                ],
            }
        ),
    ]
    today = timezone.localdate()

    def sorted_top(group: Any) -> list[int]:
        sql, params = snapshot._where(group, today)
        order = "ORDER BY cents DESC, id DESC LIMIT 10"
        found = snapshot.fetch(f"SELECT id FROM customers WHERE {sql} {order}", params)  # noqa: S608
        return [row[0] for row in found]

    def sql_top(group: Any) -> list[int]:
        matching = customers_matching(group, today=today).order_by("-total_spend", "-id")
        return list(matching.values_list("id", flat=True)[:10])

    for group in rules:
        assert snapshot.top_ids(group, today=today, limit=10) == sorted_top(group) == sql_top(group)
    # With a delta: the richest customers changed (two of them poorer now), one deleted.
    richest = sql_top(rules[1])
    Customer.objects.filter(pk__in=richest[:2]).update(total_spend=0, updated_at=timezone.now())
    Customer.objects.filter(pk=richest[2]).delete()
    CustomerFactory(total_spend=Decimal("220"), order_count=1)
    monkeypatch.setattr(snapshot_module, "RECONCILE_EVERY_SECONDS", -1.0)
    assert snapshot.refresh()
    assert snapshot.delta_rows > 0
    for group in rules:
        assert snapshot.top_ids(group, today=today, limit=10) == sorted_top(group) == sql_top(group)
    # A compacted generation is stored in spend order too.
    assert snapshot.compact()
    current = generation_current(tmp_path)
    assert current is not None
    assert current.customers_by_spend
    following = CustomerSnapshot(directory=tmp_path)
    following.attach(current)
    assert following.refresh()
    for group in rules:
        assert following.top_ids(group, today=today, limit=10) == sql_top(group)
