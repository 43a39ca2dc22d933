"""Reads never write: the insight API (one, the list) and the panel fragment the page polls every
2 s run no INSERT, UPDATE or DELETE on any table, whatever state the insights are in; a stalled
insight is put right by the recovery sweep (insights_recover), never by a read."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from minicrm.insights.models import Insight
from minicrm.segments.models import Segment

from .conftest import HIGH_SPENDERS, segment_create

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture(autouse=True)
def _offline(settings: Any) -> None:
    settings.AI_PROVIDER = "offline"


def _insight(segment: Segment, status: str, **fields: Any) -> Insight:
    return Insight.objects.create(
        segment=segment, rules=segment.rules, status=status, provider="offline", **fields
    )


@pytest.fixture
def segment() -> Segment:
    """One insight in each state, the newest a running one whose worker is gone (started a day
    ago, its lease expired a minute ago): what an old read used to fail or queue again."""
    segment = segment_create("High spenders", HIGH_SPENDERS)
    long_ago = timezone.now() - timedelta(days=1)
    _insight(segment, Insight.Status.SUCCEEDED, content={"summary": "Fine."}, facts={})
    _insight(segment, Insight.Status.FAILED, error="The provider said no.")
    _insight(segment, Insight.Status.QUEUED)
    _insight(
        segment,
        Insight.Status.RUNNING,
        attempts=1,
        started_at=long_ago,
        lease_token="a" * 32,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    return segment


def _writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().split()[0].upper() in WRITES]


def test_the_insight_api_reads_without_writing(api_client: Client, segment: Segment) -> None:
    insights = list(Insight.objects.filter(segment=segment).order_by("pk"))
    api_client.get(f"/api/v1/insights/{insights[0].pk}")  # authentication's first use, if any

    with CaptureQueriesContext(connection) as queries:
        answers = [api_client.get(f"/api/v1/insights/{insight.pk}") for insight in insights]
        listed = api_client.get(f"/api/v1/segments/{segment.pk}/insights")

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.json()["status"] for answer in answers] == [
        "succeeded",
        "failed",
        "queued",
        "running",
    ]
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 4
    assert _writes(queries) == []
    stalled = insights[-1]
    stalled.refresh_from_db()
    assert (stalled.status, stalled.lease_token) == ("running", "a" * 32)


def test_the_panel_fragment_reads_without_writing(
    marketer_client: Client, segment: Segment
) -> None:
    url = reverse("insights:segment_panel", args=[segment.pk])
    marketer_client.get(url)  # the session's first use, if any

    with CaptureQueriesContext(connection) as queries:
        polled = marketer_client.get(url, headers={"HX-Request": "true"})
        page = marketer_client.get(url)

    assert (polled.status_code, page.status_code) == (200, 200)
    assert b'data-state="running"' in polled.content
    assert _writes(queries) == []
    assert Insight.objects.filter(status=Insight.Status.RUNNING).count() == 1
