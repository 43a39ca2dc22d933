"""Leases and the recovery sweep: task rows of lost workers are marked failed, live ones are left
alone, a worker beats and sweeps from the moment it starts, and `db_worker` is ours."""

import threading
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command, get_commands
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from minicrm.core.leases import (
    HEARTBEAT_KEEP_LEASES,
    WorkerLostError,
    lease_kept,
    task_rows_fail_orphaned,
    worker_beat,
    worker_forget,
)
from minicrm.core.models import WorkerHeartbeat
from minicrm.core.recovery import work_recover, worker_heartbeat
from minicrm.imports.models import Import

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
LEASE = 30


@pytest.fixture(autouse=True)
def _lease(settings: Any) -> None:
    settings.MINICRM_WORK_LEASE_SECONDS = LEASE
    settings.MINICRM_WORK_SWEEP_SECONDS = 10


def heartbeat(worker_id: str, *, expires_in: float) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=worker_id, started_at=now, expires_at=now + timedelta(seconds=expires_in)
    )


def task_row(worker_id: str | None, *, started_ago: float, status: str = "RUNNING") -> str:
    now = timezone.now()
    row = DBTaskResult.objects.create(
        status=status,
        args_kwargs={"args": [1], "kwargs": {}},
        task_path="tests.core.sample_tasks.multiply",
        backend_name="default",
        run_after=now,
        started_at=now - timedelta(seconds=started_ago),
        worker_ids=[] if worker_id is None else ["earlier", worker_id],
        exception_class_path="",
        traceback="",
    )
    return str(row.pk)


def test_db_worker_is_the_command_with_a_heartbeat() -> None:
    # minicrm.core comes before django_tasks_db in INSTALLED_APPS, so its db_worker wins.
    assert get_commands()["db_worker"] == "minicrm.core"


def test_only_rows_running_under_a_lost_worker_are_marked_failed() -> None:
    heartbeat("dead", expires_in=-1)
    heartbeat("live", expires_in=20)
    lost = task_row("dead", started_ago=60)
    never_beat = task_row("gone", started_ago=60)
    busy = task_row("live", started_ago=600)
    just_claimed = task_row("dead", started_ago=1)
    finished = task_row("dead", started_ago=60, status="SUCCESSFUL")

    assert task_rows_fail_orphaned() == 2

    statuses = dict(DBTaskResult.objects.values_list("id", "status"))
    assert {str(key): value for key, value in statuses.items()} == {
        lost: "FAILED",
        never_beat: "FAILED",
        busy: "RUNNING",
        just_claimed: "RUNNING",
        finished: "SUCCESSFUL",
    }
    failed = DBTaskResult.objects.get(pk=lost)
    assert failed.exception_class_path == "minicrm.core.leases.WorkerLostError"
    assert failed.traceback.startswith("WorkerLostError: worker dead stopped renewing")
    assert failed.finished_at is not None
    # The package's result API imports the class from this path.
    assert import_string(failed.exception_class_path) is WorkerLostError
    assert task_rows_fail_orphaned() == 0


def test_a_worker_beats_renews_and_forgets_its_heartbeat() -> None:
    worker_beat(worker_id="w1")
    first = WorkerHeartbeat.objects.get()
    assert first.worker_id == "w1"
    assert first.pid is not None
    assert first.expires_at - first.started_at == timedelta(seconds=LEASE)

    later = timezone.now() + timedelta(seconds=5)
    worker_beat(worker_id="w1", now=later)
    renewed = WorkerHeartbeat.objects.get()
    assert (renewed.started_at, renewed.expires_at) == (
        first.started_at,
        later + timedelta(seconds=LEASE),
    )

    worker_forget(worker_id="w1")
    assert not WorkerHeartbeat.objects.exists()


def test_heartbeats_of_long_dead_workers_are_pruned() -> None:
    heartbeat("ancient", expires_in=-LEASE * HEARTBEAT_KEEP_LEASES - 1)
    heartbeat("recent", expires_in=-1)

    task_rows_fail_orphaned()

    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["recent"]


def test_a_worker_sweeps_when_it_starts_and_forgets_its_heartbeat_when_it_stops(
    django_capture_on_commit_callbacks: Capture,
) -> None:
    lost = Import.objects.create(
        kind="customers",
        file="imports/x.csv",
        original_filename="x.csv",
        status="running",
        lease_token="a" * 32,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    heartbeat("dead", expires_in=-1)
    row = task_row("dead", started_ago=60)

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        worker_heartbeat(worker_id="new"),
    ):
        assert WorkerHeartbeat.objects.filter(worker_id="new").exists()
        assert Import.objects.get(pk=lost.pk).recoveries == 1
        assert DBTaskResult.objects.get(pk=row).status == TaskResultStatus.FAILED

    assert len(callbacks) == 1  # the lost import, queued again
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["dead"]


def test_a_lease_is_renewed_from_a_thread_until_the_block_ends(settings: Any) -> None:
    settings.MINICRM_WORK_LEASE_SECONDS = 0.03
    renewed = threading.Event()
    calls: list[int] = []

    def renew() -> None:
        calls.append(1)
        renewed.set()

    with lease_kept(renew, name="test"):
        assert renewed.wait(10)

    count = len(calls)
    assert count >= 1
    assert not any(thread.name == "lease test" for thread in threading.enumerate())
    assert len(calls) == count


def test_the_sweep_with_nothing_lost_changes_nothing() -> None:
    heartbeat("live", expires_in=20)
    task_row("live", started_ago=60)
    before = (
        list(DBTaskResult.objects.values()),
        list(WorkerHeartbeat.objects.values()),
    )

    assert work_recover() == {
        "imports": 0,
        "insights": 0,
        "campaigns": 0,
        "campaign_summaries": 0,
        "rate_reconversions": 0,
        "task_rows": 0,
    }

    assert (list(DBTaskResult.objects.values()), list(WorkerHeartbeat.objects.values())) == before


def test_the_work_recover_command_reports_what_it_did() -> None:
    heartbeat("dead", expires_in=-1)
    task_row("dead", started_ago=60)
    out = StringIO()

    call_command("work_recover", stdout=out)

    assert out.getvalue() == (
        "Lost work resumed or failed. imports: 0; insights: 0; campaigns: 0; campaign "
        "summaries: 0; rate reconversions: 0; task rows: 1.\n"
    )


def test_the_work_recover_command_can_sweep_in_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--every` sweeps until stopped (here: the third sleep), printing only sweeps that did
    something."""
    heartbeat("dead", expires_in=-1)
    task_row("dead", started_ago=60)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("minicrm.core.management.commands.work_recover.time.sleep", sleep)
    # The loop drops stale connections between sweeps; here that would close the test's own.
    monkeypatch.setattr(
        "minicrm.core.management.commands.work_recover.close_old_connections", lambda: None
    )
    out = StringIO()
    with pytest.raises(KeyboardInterrupt):
        call_command("work_recover", "--every", "7", stdout=out)

    assert sleeps == [7.0, 7.0, 7.0]
    assert out.getvalue().count("task rows: 1") == 1


def test_a_worker_stopped_in_the_middle_of_a_query_exits_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """django-tasks-db exits from its SIGTERM handler even inside a query; on MariaDB closing that
    transaction then fails. Our db_worker exits 0 for such an asked-for stop, and still fails on
    any other database error."""
    from django.db import InterfaceError
    from django_tasks_db.management.commands.db_worker import Command as PackageCommand

    def stopped_mid_query(*args: object, **options: object) -> None:
        try:
            raise SystemExit(0)  # the package's shutdown handler
        except SystemExit:
            raise InterfaceError("(0, '')") from None

    def broken(*args: object, **options: object) -> None:
        raise InterfaceError("the server went away")

    from minicrm.core.management.commands.db_worker import Command

    options = {"reload": False, "batch": False}
    monkeypatch.setattr(PackageCommand, "handle", stopped_mid_query)
    with pytest.raises(SystemExit) as stopped:
        Command().handle(worker_id="stopping", **options)
    assert stopped.value.code == 0

    monkeypatch.setattr(PackageCommand, "handle", broken)
    with pytest.raises(InterfaceError):
        Command().handle(worker_id="broken", **options)
