"""A running insight whose worker died is failed after INSIGHT_STALLED_AFTER_SECONDS, so the
panel and the API stop waiting for it and a new request is not folded into it."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from minicrm.customers.models import Customer
from minicrm.insights.models import Insight
from minicrm.insights.services import insight_request, insights_fail_stalled
from minicrm.segments.models import Segment

from .conftest import HIGH_SPENDERS, segment_create


@pytest.fixture(autouse=True)
def _stall_after_ten_minutes(settings: Any) -> None:
    settings.INSIGHT_STALLED_AFTER_SECONDS = 600
    settings.AI_PROVIDER = "offline"


@pytest.fixture
def segment(known_base: dict[str, Customer]) -> Segment:
    return segment_create("High spenders", HIGH_SPENDERS)


def running(segment: Segment, *, minutes_ago: int, status: str = "running") -> Insight:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    insight = Insight.objects.create(
        segment=segment, rules=segment.rules, status=status, provider="offline", attempts=1
    )
    Insight.objects.filter(pk=insight.pk).update(started_at=started, created_at=started)
    insight.refresh_from_db()
    return insight


def test_only_insights_running_past_the_limit_are_failed_with_the_reason(
    segment: Segment,
) -> None:
    stalled = running(segment, minutes_ago=11)
    busy = running(segment, minutes_ago=2)
    queued = running(segment, minutes_ago=30, status="queued")

    assert insights_fail_stalled() == 1

    stalled.refresh_from_db()
    assert stalled.status == Insight.Status.FAILED
    assert stalled.error.startswith("The worker stopped while generating these insights")
    assert "10 minutes" in stalled.error
    assert stalled.finished_at is not None
    assert Insight.objects.get(pk=busy.pk).status == Insight.Status.RUNNING
    # Queued ones may be waiting for a retry's run_after or for a worker to start: not stalled.
    assert Insight.objects.get(pk=queued.pk).status == Insight.Status.QUEUED


def test_the_segment_and_insight_filters_limit_the_sweep(known_base: dict[str, Any]) -> None:
    first = segment_create("First", HIGH_SPENDERS)
    second = segment_create("Second", HIGH_SPENDERS)
    mine, theirs = running(first, minutes_ago=20), running(second, minutes_ago=20)

    assert insights_fail_stalled(segment_id=first.pk) == 1
    assert insights_fail_stalled(insight_id=theirs.pk) == 1
    assert {Insight.objects.get(pk=pk).status for pk in (mine.pk, theirs.pk)} == {"failed"}


def test_a_new_request_is_not_folded_into_a_stalled_insight(segment: Segment) -> None:
    stalled = running(segment, minutes_ago=15)

    fresh = insight_request(segment_id=segment.pk, requested_by=None)

    assert fresh.pk != stalled.pk
    assert fresh.status == Insight.Status.QUEUED
    assert Insight.objects.get(pk=stalled.pk).status == Insight.Status.FAILED


def test_the_panel_shows_the_failure_and_stops_polling(
    marketer_client: Client, segment: Segment
) -> None:
    running(segment, minutes_ago=15)

    html = marketer_client.get(reverse("insights:segment_panel", args=[segment.pk])).content
    page = html.decode()

    assert 'data-state="failed"' in page
    assert "The worker stopped while generating these insights" in page
    assert "Try again" in page
    assert 'hx-trigger="every 2s"' not in page


def test_a_running_insight_still_polls(marketer_client: Client, segment: Segment) -> None:
    running(segment, minutes_ago=1)

    page = marketer_client.get(reverse("insights:segment_panel", args=[segment.pk])).content

    assert b'data-state="running"' in page
    assert b'hx-trigger="every 2s"' in page


def test_the_api_reports_a_stalled_insight_as_failed(api_client: Client, segment: Segment) -> None:
    stalled = running(segment, minutes_ago=15)

    one = api_client.get(f"/api/v1/insights/{stalled.pk}").json()
    assert one["status"] == "failed"
    assert "worker stopped" in one["error"]

    other = running(segment, minutes_ago=15)
    listed = api_client.get(f"/api/v1/segments/{segment.pk}/insights").json()
    assert {item["id"]: item["status"] for item in listed["items"]}[other.pk] == "failed"


def test_nothing_stalled_means_no_write(segment: Segment) -> None:
    running(segment, minutes_ago=1)

    with CaptureQueriesContext(connection) as queries:
        assert insights_fail_stalled(segment_id=segment.pk) == 0

    assert [query["sql"] for query in queries if query["sql"].upper().startswith("UPDATE")] == []
