"""An insight whose worker died is found by its expired lease and queued again (or failed at the
attempt limit) by the recovery sweep, within a minute and without a person; reads never write."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from minicrm.customers.models import Customer
from minicrm.insights import services as insight_services
from minicrm.insights.models import Insight
from minicrm.insights.services import insight_generate, insights_recover
from minicrm.segments.models import Segment

from .conftest import HIGH_SPENDERS, segment_create

Capture = Callable[..., Any]


@pytest.fixture(autouse=True)
def _offline_with_four_attempts(settings: Any) -> None:
    settings.AI_PROVIDER = "offline"
    settings.INSIGHT_MAX_ATTEMPTS = 4
    settings.MINICRM_WORK_LEASE_SECONDS = 30


@pytest.fixture
def segment(known_base: dict[str, Customer]) -> Segment:
    return segment_create("High spenders", HIGH_SPENDERS)


def running(
    segment: Segment, *, lease_seconds: float, attempts: int = 1, status: str = "running"
) -> Insight:
    """An insight as a worker left it: its lease ends `lease_seconds` from now (past if < 0)."""
    now = timezone.now()
    return Insight.objects.create(
        segment=segment,
        rules=segment.rules,
        status=status,
        provider="offline",
        attempts=attempts,
        started_at=now - timedelta(minutes=1),
        lease_token="a" * 32 if status == "running" else "",
        lease_expires_at=now + timedelta(seconds=lease_seconds) if status == "running" else None,
    )


def test_a_lost_insight_is_queued_again_and_generated(
    segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    lost = running(segment, lease_seconds=-1)

    with django_capture_on_commit_callbacks(execute=True):
        assert insights_recover() == 1

    lost.refresh_from_db()
    assert lost.status == Insight.Status.SUCCEEDED
    assert lost.attempts == 2
    assert lost.error == ""
    assert (lost.lease_token, lost.lease_expires_at) == ("", None)
    assert lost.facts is not None
    assert lost.facts["segment"]["customers"] == 3


def test_the_lost_attempt_is_named_while_the_next_one_waits(
    segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    lost = running(segment, lease_seconds=-1, attempts=2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert insights_recover() == 1

    lost.refresh_from_db()
    assert lost.status == Insight.Status.QUEUED
    assert lost.error == "The worker stopped during attempt 2; trying again automatically."
    assert (lost.lease_token, lost.lease_expires_at, lost.finished_at) == ("", None, None)
    assert len(callbacks) == 1


def test_a_lost_insight_at_the_attempt_limit_fails_with_the_reason(
    segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    lost = running(segment, lease_seconds=-1, attempts=4)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert insights_recover() == 1

    lost.refresh_from_db()
    assert lost.status == Insight.Status.FAILED
    assert lost.error == (
        "The worker stopped while generating these insights (4 attempts). Try again."
    )
    assert lost.finished_at is not None
    assert lost.attempts == 4
    assert callbacks == []


def test_live_leases_queued_and_finished_insights_are_left_alone(segment: Segment) -> None:
    busy = running(segment, lease_seconds=20)
    queued = running(segment, lease_seconds=-1, status="queued")
    done = running(segment, lease_seconds=-1, status="succeeded")
    before = list(Insight.objects.order_by("pk").values())

    assert insights_recover() == 0

    assert list(Insight.objects.order_by("pk").values()) == before
    assert {busy.pk, queued.pk, done.pk} == {row["id"] for row in before}


def test_a_running_insight_from_before_leases_is_recovered(
    segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    legacy = running(segment, lease_seconds=0)
    Insight.objects.filter(pk=legacy.pk).update(lease_token="", lease_expires_at=None)

    with django_capture_on_commit_callbacks(execute=False):
        assert insights_recover() == 1

    assert Insight.objects.get(pk=legacy.pk).status == Insight.Status.QUEUED


def test_two_sweeps_queue_a_lost_insight_once(
    segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    running(segment, lease_seconds=-1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert insights_recover() == 1
        assert insights_recover() == 0

    assert len(callbacks) == 1


def test_a_run_that_lost_its_lease_does_not_overwrite_the_run_that_took_over(
    segment: Segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    insight = Insight.objects.create(segment=segment, rules=segment.rules)
    real = insight_services.get_provider()

    class LosesItsLease:
        name, model = real.name, real.model

        def insight(self, facts: dict[str, Any]) -> Any:
            # Meanwhile the sweep took the insight as lost and queued it again.
            Insight.objects.filter(pk=insight.pk).update(
                status=Insight.Status.QUEUED, lease_token="", lease_expires_at=None
            )
            return real.insight(facts)

    monkeypatch.setattr(insight_services, "get_provider", LosesItsLease)

    result = insight_generate(insight_id=insight.pk, may_retry=True)

    assert result is not None
    assert result.status == Insight.Status.QUEUED
    stored = Insight.objects.get(pk=insight.pk)
    assert (stored.status, stored.content, stored.finished_at) == ("queued", None, None)


def test_the_panel_and_the_api_read_a_lost_insight_without_writing(
    marketer_client: Client, api_client: Client, segment: Segment
) -> None:
    lost = running(segment, lease_seconds=-1)

    with CaptureQueriesContext(connection) as queries:
        page = marketer_client.get(reverse("insights:segment_panel", args=[segment.pk]))
        one = api_client.get(f"/api/v1/insights/{lost.pk}").json()
        listed = api_client.get(f"/api/v1/segments/{segment.pk}/insights").json()

    assert b'data-state="running"' in page.content
    # It keeps polling: the sweep queues it again within a minute.
    assert b'hx-trigger="every 2s"' in page.content
    assert one["status"] == "running"
    assert [item["status"] for item in listed["items"]] == ["running"]
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"UPDATE", "INSERT"}]
    assert [sql for sql in writes if "insights_insight" in sql] == []
    assert Insight.objects.get(pk=lost.pk).status == Insight.Status.RUNNING
