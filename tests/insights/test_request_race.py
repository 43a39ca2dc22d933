"""Two requests for a segment's insight at once (a double click) queue one insight and one task,
on PostgreSQL and MariaDB: insight_request locks the segment's row before it looks for a
pending insight. (SQLite runs one writer at a time: its IMMEDIATE transactions already queue
the second request behind the first.)"""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from minicrm.insights.models import Insight
from minicrm.insights.services import insight_request
from minicrm.segments.models import Segment

from .conftest import HIGH_SPENDERS, segment_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.server_database,
    pytest.mark.timeout(120),
]

# The database backend: a queued task is a row every thread's connection sees once committed.
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# How long a request that found no pending insight waits for the other one to find none too.
# Without the lock both get there and it returns at once; with it the other one is blocked on
# the segment's row, so the wait runs out and the first request goes on alone.
MEET_SECONDS = 3


@pytest.fixture
def tasks_kept() -> Iterator[None]:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL or MariaDB")
    with override_settings(TASKS=DATABASE_TASKS):
        yield


def test_two_requests_at_once_queue_one_insight(
    tasks_kept: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment: Segment = segment_create("High spenders", HIGH_SPENDERS)
    # Both requests have looked for a pending insight before either creates one, when they can.
    meet = threading.Barrier(2)
    create = Insight.objects.create
    met: list[bool] = []  # per insight created: whether the other request had looked too

    def create_when_both_looked(**fields: Any) -> Insight:
        try:
            meet.wait(timeout=MEET_SECONDS)
            met.append(True)
        except threading.BrokenBarrierError:
            # The other request is waiting for the segment's lock: this one goes on alone.
            met.append(False)
        return create(**fields)

    monkeypatch.setattr(Insight.objects, "create", create_when_both_looked)
    start = threading.Barrier(2)

    def request() -> int:
        try:
            start.wait(timeout=30)
            return insight_request(segment_id=segment.pk, requested_by=None).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(request) for _ in range(2)]
        answered = [future.result(timeout=90) for future in futures]

    assert met == [False]
    [insight] = Insight.objects.filter(segment=segment)
    assert answered == [insight.pk, insight.pk]
    assert insight.status == Insight.Status.QUEUED
    queued = [row.args_kwargs["args"] for row in DBTaskResult.objects.all()]
    assert queued == [[insight.pk]]
