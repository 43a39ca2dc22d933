"""Size tasks: one segment's point, and the self-renewing daily chain (no cron)."""

from collections.abc import Iterator
from datetime import date, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_tasks import default_task_backend

from minicrm.accounts.models import User
from minicrm.segments.models import SegmentSize, SegmentSizeSchedule
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create, segment_sizes_ensure
from minicrm.segments.tasks import segment_size_record_task, segment_sizes_daily_task
from tests.factories import CustomerFactory

EVERYONE = {"match": "all", "conditions": []}
DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def deferred_tasks() -> Iterator[list[object]]:
    """Swap in the dummy backend, which keeps enqueued tasks instead of running them."""
    with override_settings(TASKS=DUMMY):
        yield default_task_backend.results  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_record_task_returns_the_size(marketer: User) -> None:
    segment = segment_create(name="All", rules=parse_rules(EVERYONE), created_by=marketer)
    CustomerFactory.create_batch(3)
    assert segment_size_record_task.call(segment.pk) == 3
    assert segment_size_record_task.call(segment.pk + 1) is None
    assert SegmentSize.objects.get().size == 3


@pytest.mark.django_db
@override_settings(TIME_ZONE="Asia/Kolkata")
def test_daily_task_records_every_segment_and_schedules_tomorrow(
    marketer: User, deferred_tasks: list[object], django_capture_on_commit_callbacks: Any
) -> None:
    segment_create(name="All", rules=parse_rules(EVERYONE), created_by=marketer)
    CustomerFactory()
    SegmentSizeSchedule.objects.create(pk=1, next_run_on=date(2025, 6, 1))

    # Tomorrow's run is queued once the task's writes commit (minicrm.core.tasks).
    with django_capture_on_commit_callbacks(execute=True):
        assert segment_sizes_daily_task.call("2025-06-01") == 1

    assert list(SegmentSize.objects.values_list("day", "size")) == [(date(2025, 6, 1), 1)]
    assert SegmentSizeSchedule.objects.get().next_run_on == date(2025, 6, 2)
    [follow_up] = deferred_tasks
    assert follow_up.task.func is segment_sizes_daily_task.func  # type: ignore[attr-defined]
    assert follow_up.args == ["2025-06-02"]  # type: ignore[attr-defined]
    # 00:05 in Kolkata on the 2nd is 18:35 UTC on the 1st.
    assert follow_up.task.run_after == datetime.fromisoformat(  # type: ignore[attr-defined]
        "2025-06-01T18:35:00+00:00"
    )


@pytest.mark.django_db
def test_a_second_run_for_the_same_day_stops_the_duplicate_chain(
    marketer: User, deferred_tasks: list[object]
) -> None:
    segment_create(name="All", rules=parse_rules(EVERYONE), created_by=marketer)
    SegmentSizeSchedule.objects.create(pk=1, next_run_on=date(2025, 6, 2))
    assert segment_sizes_daily_task.call("2025-06-01") == 0
    assert deferred_tasks == []
    assert not SegmentSize.objects.exists()
    assert SegmentSizeSchedule.objects.get().next_run_on == date(2025, 6, 2)


@pytest.mark.django_db(transaction=True)
def test_ensure_starts_the_chain_once(deferred_tasks: list[object]) -> None:
    today = date(2025, 6, 1)
    assert segment_sizes_ensure(today=today) == today
    assert segment_sizes_ensure(today=today) is None
    assert [result.args for result in deferred_tasks] == [["2025-06-01"]]  # type: ignore[attr-defined]
    # A chain whose day passed without a run is dead: ensure starts a new one.
    assert segment_sizes_ensure(today=date(2025, 6, 5)) == date(2025, 6, 5)
    assert SegmentSizeSchedule.objects.get().next_run_on == date(2025, 6, 5)


@pytest.mark.django_db(transaction=True)
def test_command_reports_what_it_did(deferred_tasks: list[object]) -> None:
    out = StringIO()
    call_command("segment_sizes_schedule", stdout=out)
    call_command("segment_sizes_schedule", stdout=out)
    call_command("segment_sizes_schedule", "--force", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Scheduled the daily segment size count from ")
    assert lines[1] == "The daily segment size count is already scheduled."
    assert lines[2].startswith("Scheduled the daily segment size count from ")
    assert len(deferred_tasks) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("immediate_tasks")  # a real backend defers the chain (tests above)
def test_without_deferred_tasks_the_chain_runs_today_only(marketer: User) -> None:
    # The immediate backend cannot run tasks later: today runs, nothing loops.
    segment = segment_create(name="All", rules=parse_rules(EVERYONE), created_by=marketer)
    SegmentSize.objects.all().delete()  # the point recorded on creation
    segment_sizes_ensure(today=date(2025, 6, 1))
    assert list(SegmentSize.objects.values_list("segment", "day")) == [
        (segment.pk, date(2025, 6, 1))
    ]
    assert SegmentSizeSchedule.objects.get().next_run_on == date(2025, 6, 2)
