"""Two worker processes on one queue, on each backend: django-tasks-db's `db_worker` (on this
pass's database server) and RQ's `rqworker` (on the real Redis).

Each task runs exactly once, in one of the two workers, and both take part. Two campaigns sent at
once are delivered by the two workers side by side: every recipient gets one message, the
counters equal the rows, and the webhook channel's rate limit holds for both workers together,
judged from the moments the batches reached the vendor. Workers are always killed at the end.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from tests.campaigns.test_crash import SECRET, RecordingVendor, vendor_serving
from tests.conftest import service_url

from .worker_process import (
    ROOT,
    WorkerDatabase,
    manage,
    python,
    start_worker,
    wait_for,
    worker_database,
    worker_env,
    worker_processes,
)

WORKERS = 2
TASKS = 100
LATER_SECONDS = 2  # one more task, deferred by this long
RECIPIENTS = 800  # per campaign, two campaigns
RATE = 400  # webhook messages per second, for all workers together
PIECE = 50  # messages per batch, and so per POST and per reservation of the rate
WAIT_SECONDS = 90


@dataclass(frozen=True)
class Backend:
    """How a test starts this backend's workers, and the settings that select it."""

    name: str
    settings: dict[str, str]
    start: Callable[[dict[str, str], str, Path], "subprocess.Popen[bytes]"]


def _rq_worker(env: dict[str, str], worker_id: str, log: Path) -> "subprocess.Popen[bytes]":
    # The command of the README's production section.
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "--with-scheduler",
                "--job-class",
                "django_tasks_rq.Job",
                "--name",
                worker_id,
                "default",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(
    scope="module",
    params=[
        "database",  # on this pass's database server
        pytest.param("rq", marks=[pytest.mark.redis, pytest.mark.once]),  # SQLite suffices
    ],
)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "database":
        return Backend("database", {"MINICRM_TASKS_BACKEND": "database"}, start_worker)
    url = service_url("MINICRM_TEST_REDIS_URL", "Redis")
    # Jobs left by an earlier, interrupted run would be taken by these workers.
    Queue("default", connection=redis.Redis.from_url(url)).empty()
    settings = {"MINICRM_TASKS_BACKEND": "rq", "REDIS_URL": url, "MINICRM_TEST_REDIS_URL": url}
    return Backend("rq", settings, _rq_worker)


@dataclass(frozen=True)
class Workplace:
    folder: Path
    database: WorkerDatabase
    env: dict[str, str]


@pytest.fixture(scope="module")
def workplace(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workplace]:
    """The workers' database, migrated once for both tests of a backend (each test reads only
    the rows it made)."""
    folder = tmp_path_factory.mktemp(f"workers_{backend.name}")
    with worker_database(folder) as database:
        env = worker_env(folder, database, **backend.settings)
        manage(env, "migrate", "--noinput")
        yield Workplace(folder, database, env)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# How long a worker may take to finish its task and exit after SIGTERM. Seconds alone; CI runs
# this beside a server pass on 2 cores, where one stop took over 30 s (its SQLite file shared
# by two workers and the test).
STOP_SECONDS = 90


def _stop(workers: list["subprocess.Popen[bytes]"], log: Path) -> None:
    """Stop the workers as a deploy does (SIGTERM, they finish their task) and check they did."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            code = worker.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            pytest.fail(
                f"a worker still ran {STOP_SECONDS} s after SIGTERM:\n{log.read_text()[-4000:]}"
            )
        assert code == 0, log.read_text()[-4000:]


# The last task is deferred: RQ runs it only if a worker runs the scheduler.
ENQUEUE = """
import json
from datetime import timedelta
from django.utils import timezone
from tests.core.sample_tasks import run_record, workers_meet
ids = [workers_meet.enqueue({meets!r}, {workers}).id for _ in range({workers})]
ids += [run_record.enqueue({runs!r}, key).id for key in range({tasks})]
later = run_record.using(run_after=timezone.now() + timedelta(seconds={later}))
ids.append(later.enqueue({runs!r}, {tasks}).id)
print(json.dumps(ids))
print(later.run_after.timestamp())
"""

RESULTS = """
import json
from django_tasks import default_task_backend
results = [default_task_backend.get_result(id_) for id_ in json.loads({ids!r})]
print(json.dumps([[str(r.status), r.worker_ids, r.return_value] for r in results]))
"""


def test_two_workers_run_each_task_exactly_once(
    tmp_path: Path, backend: Backend, workplace: Workplace
) -> None:
    meets, runs, log = tmp_path / "meets.log", tmp_path / "runs.log", tmp_path / "workers.log"
    env = workplace.env
    ids, due = python(
        env,
        ENQUEUE.format(
            meets=str(meets), runs=str(runs), workers=WORKERS, tasks=TASKS, later=LATER_SECONDS
        ),
    ).splitlines()
    with worker_processes() as workers:
        workers.extend(backend.start(env, f"worker-{n}", log) for n in range(WORKERS))
        wait_for("every task to run", lambda: len(_lines(runs)) > TASKS, WAIT_SECONDS, log)
        _stop(workers, log)
    results = json.loads(python(env, RESULTS.format(ids=ids)))
    ran = [line.split() for line in _lines(runs)]

    # The first tasks waited for each other: both workers were taking tasks at the same time.
    assert [result[2] for result in results[:WORKERS]] == [WORKERS] * WORKERS
    # Every task ran once: one line each, one attempt each, by one worker, successfully.
    assert Counter(int(key) for key, _pid, _at in ran) == dict.fromkeys(range(TASKS + 1), 1)
    # The deferred one ran, and not before its time (RQ rounds it down to the second).
    [deferred_at] = [float(at) for key, _pid, at in ran if int(key) == TASKS]
    assert deferred_at >= int(float(due))
    assert len(_lines(meets)) == WORKERS
    assert {status for status, _workers, _value in results} == {"SUCCESSFUL"}
    assert [len(worker_ids) for _status, worker_ids, _value in results] == [1] * len(results)
    ran_on = Counter(worker_ids[0] for _status, worker_ids, _value in results)
    assert set(ran_on) == {f"worker-{n}" for n in range(WORKERS)}, ran_on


class TimedVendor(RecordingVendor):
    """The crash test's vendor, noting when each batch arrived. It holds every batch until both
    campaigns have reached it, so their first batches are in flight together: two workers."""

    def __init__(self, campaigns: int) -> None:
        super().__init__()
        self.release.set()  # nothing is held for a crash here
        self.campaigns = campaigns
        self.arrivals: list[tuple[float, str, int]] = []  # (epoch seconds, subject, messages)
        self.subjects: set[str] = set()
        self.all_arrived = threading.Event()

    def answer(self, body: bytes, signature: str | None) -> tuple[int, bytes]:
        arrived = time.time()
        messages = json.loads(body)["messages"]
        with self.lock:
            self.arrivals.append((arrived, messages[0]["subject"], len(messages)))
            self.subjects.update(message["subject"] for message in messages)
            if len(self.subjects) >= self.campaigns:
                self.all_arrived.set()
        self.all_arrived.wait(timeout=WAIT_SECONDS)
        return super().answer(body, signature)


SEND = f"""
from minicrm.campaigns.services import campaign_create, campaign_send
from minicrm.customers.services import customers_bulk_upsert
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

customers_bulk_upsert(rows=[
    {{"external_id": f"C-{{n}}", "email": f"c{{n}}@example.com", "first_name": f"N{{n}}"}}
    for n in range({RECIPIENTS})
])
segment = segment_create(
    name="All", rules=parse_rules({{"match": "all", "conditions": []}}), created_by=None
)
for n in range({WORKERS}):
    campaign = campaign_create(
        created_by=None, name=f"Campaign {{n}}", segment_id=segment.pk, channel="webhook",
        subject=f"Campaign {{n}}", template="Hello {{{{ first_name }}}}",
    )
    campaign_send(campaign_id=campaign.pk)
    print(campaign.pk)
"""


def test_two_workers_deliver_two_campaigns_once_each_within_one_rate(
    tmp_path: Path, backend: Backend, workplace: Workplace
) -> None:
    vendor = TimedVendor(campaigns=WORKERS)
    log = tmp_path / "workers.log"
    database = workplace.database
    with vendor_serving(vendor) as url:
        env = dict(
            workplace.env,
            MINICRM_WEBHOOK_URL=url,
            MINICRM_WEBHOOK_SECRET=SECRET,
            MINICRM_WEBHOOK_TIMEOUT_SECONDS="60",
            MINICRM_DELIVERY_BATCH_SIZE=str(PIECE),
            MINICRM_RATE_WEBHOOK=str(RATE),
        )
        campaign_ids = [int(line) for line in python(env, SEND).split()]

        def counters() -> list[tuple[Any, ...]]:
            return database.rows(
                "SELECT status, audience, pending, sent, failed, skipped, held_out, delivered"
                " FROM campaigns_campaign ORDER BY id"
            )

        with worker_processes() as workers:
            began = time.time()  # no reservation of the rate can start before this
            workers.extend(backend.start(env, f"worker-{n}", log) for n in range(WORKERS))
            wait_for(
                "both campaigns to be sent",
                lambda: [row[0] for row in counters()] == ["sent"] * WORKERS,
                WAIT_SECONDS,
                log,
            )
            _stop(workers, log)
        rows = database.rows("SELECT id, campaign_id, customer_id, status FROM campaigns_delivery")
        campaigns = counters()

    assert len(campaign_ids) == WORKERS
    assert vendor.bad_signatures == 0
    # Each recipient has one delivery per campaign, sent, and its id reached the vendor once.
    pairs = Counter((campaign, customer) for _id, campaign, customer, _status in rows)
    assert len(pairs) == WORKERS * RECIPIENTS
    assert set(pairs.values()) == {1}
    assert {campaign for campaign, _customer in pairs} == set(campaign_ids)
    assert Counter(status for *_rest, status in rows) == {"sent": WORKERS * RECIPIENTS}
    received = Counter(delivery_id for batch in vendor.batches for delivery_id in batch)
    assert received == {delivery_id: 1 for delivery_id, *_rest in rows}
    # The counters equal the rows.
    assert campaigns == [("sent", RECIPIENTS, 0, RECIPIENTS, 0, 0, 0, 0)] * WORKERS
    # Both campaigns were being sent at the same time, by the two workers...
    arrivals = sorted(vendor.arrivals)
    spans = {
        subject: [at for at, sent_for, _n in arrivals if sent_for == subject]
        for subject in vendor.subjects
    }
    first, second = spans.values()
    assert min(first) < max(second)
    assert min(second) < max(first)
    # ...yet together within the one rate. A piece goes out at or after the start of the window
    # it reserved, windows never overlap, and each worker has at most one piece in flight; so in
    # any second at most RATE messages of windows starting in it, one piece of a window starting
    # just before, and one late piece per worker arrive.
    allowed = RATE + (WORKERS + 1) * PIECE
    busiest = max(
        sum(n for at, _subject, n in arrivals if start <= at < start + 1.0)
        for start, _subject, _n in arrivals
    )
    assert busiest <= allowed, (busiest, allowed)
    total = sum(n for _at, _subject, n in arrivals)
    assert total == WORKERS * RECIPIENTS
    # And all of it took at least as long as the rate allows (datetime rounds to 1 µs).
    assert arrivals[-1][0] - began >= (total - PIECE) / RATE - 0.00001
