"""The one way to enqueue and retry (minicrm.core.tasks): after commit, deferred only where the
backend can defer, and retries bounded by their family's settings."""

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from minicrm.campaigns.delivery import DELIVERY_RETRY
from minicrm.core.tasks import (
    DATABASE_RETRY,
    MAX_RETRY_DELAY,
    RetryPolicy,
    enqueue_on_commit,
    retry_later,
)
from minicrm.insights.tasks import INSIGHT_RETRY

# The immediate backend unless a test swaps in the database one, whichever backend the run uses.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("immediate_tasks")]

OnCommit = Callable[..., Any]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
POLICY = RetryPolicy(max_attempts_setting="TEST_MAX_ATTEMPTS", base_seconds_setting="TEST_BASE")

calls: list[tuple[int, ...]] = []


@task()
def note_task(*values: int) -> None:
    """Records its arguments (the immediate backend runs it in this process)."""
    calls.append(values)


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Iterator[None]:
    settings.TEST_MAX_ATTEMPTS = 3
    settings.TEST_BASE = 10
    calls.clear()
    yield
    calls.clear()


@pytest.fixture
def database_backend() -> Iterator[None]:
    """django_tasks_db's backend, which can defer: enqueued tasks become rows, nothing runs."""
    with override_settings(TASKS=DATABASE_TASKS):
        yield


def _rows() -> list[tuple[list[Any], datetime | None]]:
    """(args, run_after) of each task row; run_after None for a task not deferred."""
    rows = DBTaskResult.objects.order_by("enqueued_at")
    return [(row.args_kwargs["args"], row.task.run_after) for row in rows]


def _enqueue_then_fail(enqueue: Callable[[], None]) -> None:
    """Enqueue in a transaction that then fails and rolls back."""

    def write() -> None:
        with transaction.atomic():
            enqueue()
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError, match="the write failed"):
        write()


# --- Immediate backend (cannot defer) --------------------------------------------------------


def test_a_task_is_queued_when_the_transaction_commits(
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        enqueue_on_commit(note_task, 1, 2)
        assert calls == []  # not before the commit

    assert calls == [(1, 2)]


def test_nothing_is_queued_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _enqueue_then_fail(lambda: enqueue_on_commit(note_task, 1))

    assert callbacks == []
    assert calls == []


def test_a_delayed_task_runs_now_where_the_backend_cannot_defer(
    django_capture_on_commit_callbacks: OnCommit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minicrm.core.tasks")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(note_task, 7, delay=timedelta(minutes=5))

    assert calls == [(7,)]
    assert "runs now: the task backend cannot run tasks later" in caplog.text


def test_a_defer_only_task_is_dropped_with_a_warning_where_the_backend_cannot_defer(
    django_capture_on_commit_callbacks: OnCommit, caplog: pytest.LogCaptureFixture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(note_task, 7, run_after=timezone.now(), defer_only=True)

    assert calls == []
    [record] = [r for r in caplog.records if r.name == "minicrm.core.tasks"]
    assert record.levelno == logging.WARNING
    assert "was not queued: the task backend cannot run tasks later" in record.getMessage()


def test_a_delay_and_a_time_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        enqueue_on_commit(note_task, 1, delay=timedelta(seconds=1), run_after=timezone.now())
    with pytest.raises(ValueError, match="defer_only needs"):
        enqueue_on_commit(note_task, 1, defer_only=True)


def test_retry_later_runs_the_next_attempt_now_and_stops_at_the_limit(
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_later(note_task, 5, attempt=1, policy=POLICY) is True
        assert retry_later(note_task, 5, attempt=2, policy=POLICY) is True
        assert retry_later(note_task, 5, attempt=3, policy=POLICY) is False

    assert calls == [(5, 2), (5, 3)]


# --- Database backend (can defer) ------------------------------------------------------------


def test_a_delay_counts_from_the_commit_on_a_backend_that_can_defer(
    database_backend: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            enqueue_on_commit(note_task, 3, delay=timedelta(minutes=5))
            assert _rows() == []
        before = timezone.now()
    after = timezone.now()

    [(args, run_after)] = _rows()
    assert args == [3]
    assert run_after is not None
    assert before + timedelta(minutes=5) <= run_after <= after + timedelta(minutes=5)
    assert calls == []


def test_a_fixed_time_is_kept_and_a_plain_task_is_not_deferred(
    database_backend: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    due = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(note_task, 1, run_after=due, defer_only=True)
        enqueue_on_commit(note_task, 2)

    assert _rows() == [([1], due), ([2], None)]


def test_a_rolled_back_transaction_leaves_no_task_row(
    database_backend: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _enqueue_then_fail(lambda: enqueue_on_commit(note_task, 1, delay=timedelta(seconds=30)))

    assert _rows() == []


def test_retry_later_defers_each_attempt_with_backoff_until_the_limit(
    database_backend: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        start = timezone.now()
        assert retry_later(note_task, 9, attempt=1, policy=POLICY)
        assert retry_later(note_task, 9, attempt=2, policy=POLICY)
        assert not retry_later(note_task, 9, attempt=3, policy=POLICY)

    rows = _rows()
    assert [args for args, _ in rows] == [[9, 2], [9, 3]]
    waits = [run_after - start for _, run_after in rows if run_after is not None]
    assert len(waits) == 2
    # 10 s after attempt 1, 20 s after attempt 2 (counted from each commit, a moment later).
    assert timedelta(seconds=10) <= waits[0] < timedelta(seconds=15)
    assert timedelta(seconds=20) <= waits[1] < timedelta(seconds=25)


# --- The policy --------------------------------------------------------------------------------


def test_the_policy_reads_its_settings_when_used(settings: Any) -> None:
    assert [POLICY.delay(n) for n in (1, 2, 3)] == [
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
    ]
    assert (POLICY.max_attempts(), POLICY.may_retry(2), POLICY.may_retry(3)) == (3, True, False)

    settings.TEST_BASE = 0.5
    settings.TEST_MAX_ATTEMPTS = 0
    assert POLICY.delay(2) == timedelta(seconds=1)
    # At least one attempt, whatever the setting says.
    assert (POLICY.max_attempts(), POLICY.may_retry(1)) == (1, False)


def test_the_backoff_is_capped(settings: Any) -> None:
    settings.TEST_BASE = 60
    assert POLICY.delay(6) == timedelta(seconds=60 * 32)
    assert POLICY.delay(7) == MAX_RETRY_DELAY
    assert POLICY.delay(40) == MAX_RETRY_DELAY


def test_the_existing_families_keep_their_settings_and_defaults() -> None:
    assert (INSIGHT_RETRY.max_attempts(), INSIGHT_RETRY.delay(1)) == (4, timedelta(seconds=30))
    assert (DELIVERY_RETRY.max_attempts(), DELIVERY_RETRY.delay(1)) == (5, timedelta(seconds=10))
    # Imports and re-conversions waited 5 x 2^attempt seconds, five attempts in all.
    assert (DATABASE_RETRY.max_attempts(), [DATABASE_RETRY.delay(n) for n in (1, 2, 4)]) == (
        5,
        [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=80)],
    )
