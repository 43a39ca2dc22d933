"""Generating insights in the worker: success, retries with backoff, failures with the reason,
and a worker that never crashes. Gemini runs through the real SDK against the fake server."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from minicrm.accounts.models import User
from minicrm.customers.models import Customer
from minicrm.insights import services as insight_services
from minicrm.insights.models import Insight
from minicrm.insights.narrator import narrate
from minicrm.insights.services import insight_generate, insight_request
from minicrm.insights.tasks import insight_generate_task
from minicrm.segments.models import Segment

from .conftest import HIGH_SPENDERS, segment_create
from .fake_gemini import FakeGemini, answer, error, slow
from .test_gemini import CONTENT

Capture = Callable[..., Any]


@pytest.fixture
def segment(known_base: dict[str, Customer]) -> Segment:
    return segment_create("High spenders", HIGH_SPENDERS)


def request_and_run(segment: Segment, capture: Capture, user: User | None = None) -> Insight:
    with capture(execute=True):
        insight = insight_request(segment_id=segment.pk, requested_by=user)
    return Insight.objects.get(pk=insight.pk)


def test_offline_insight_succeeds_with_facts_and_content(
    segment: Segment, marketer: User, django_capture_on_commit_callbacks: Capture, settings: Any
) -> None:
    settings.AI_PROVIDER = "offline"

    insight = request_and_run(segment, django_capture_on_commit_callbacks, marketer)

    assert insight.status == Insight.Status.SUCCEEDED
    assert (insight.provider, insight.model) == ("offline", "rules-v1")
    assert insight.rules == segment.rules
    assert insight.facts is not None
    assert insight.facts["segment"]["customers"] == 3
    assert insight.content == narrate(insight.facts).model_dump()
    assert insight.error == ""
    assert insight.attempts == 1
    assert insight.requested_by == marketer
    assert insight.started_at is not None
    assert insight.finished_at is not None
    assert insight.started_at <= insight.finished_at
    assert insight.duration_ms is not None


def test_gemini_insight_succeeds_and_stores_its_content(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.queue(answer(CONTENT))

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.SUCCEEDED
    assert (insight.provider, insight.model) == ("gemini", "gemini-test")
    assert insight.content == CONTENT
    # The facts sent are exactly the facts stored.
    assert fake_gemini.requests[0].prompt.startswith("FACTS:\n")
    assert '"customers": 3' in fake_gemini.requests[0].prompt


def test_a_429_then_success_needs_no_second_task(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.queue(error(429, "RESOURCE_EXHAUSTED", "Slow down"), answer(CONTENT))

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.SUCCEEDED
    assert insight.attempts == 1
    assert len(fake_gemini.requests) == 2


@override_settings(INSIGHT_MAX_ATTEMPTS=2)
def test_a_500_until_the_limit_fails_with_the_reason(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.default = error(500, "INTERNAL", "Boom")

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.FAILED
    assert insight.error == "Gemini is unavailable (500 INTERNAL): Boom (gave up after 2 attempts)"
    assert insight.attempts == 2
    assert insight.content is None
    assert insight.facts is not None  # kept: they explain what was asked
    assert len(fake_gemini.requests) == 2 * 3  # two task attempts, three SDK attempts each


@override_settings(INSIGHT_MAX_ATTEMPTS=2)
def test_a_500_then_success_on_the_second_task_attempt(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.queue(*[error(503, "UNAVAILABLE", "Overloaded")] * 3, answer(CONTENT))

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.SUCCEEDED
    assert insight.attempts == 2
    assert insight.error == ""


@override_settings(INSIGHT_MAX_ATTEMPTS=1)
def test_a_timeout_fails_with_the_reason(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.default = slow(2.0)

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.FAILED
    assert insight.error == ("Gemini did not answer within 0.5 seconds. (gave up after 1 attempts)")


def test_malformed_json_fails_at_once_with_a_clear_message(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.queue(answer("{not json"))

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.FAILED
    assert insight.error.startswith("Gemini returned malformed JSON (the answer: Invalid JSON")
    assert insight.attempts == 1
    assert len(fake_gemini.requests) == 1


def test_a_missing_key_fails_with_the_reason(
    segment: Segment, settings: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.AI_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = ""

    insight = request_and_run(segment, django_capture_on_commit_callbacks)

    assert insight.status == Insight.Status.FAILED
    assert insight.error == "AI_PROVIDER is gemini but GEMINI_API_KEY is not set."


def test_the_worker_never_crashes_on_an_unexpected_error(
    segment: Segment, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Capture
) -> None:
    def explode() -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(insight_services, "get_provider", explode)
    insight = Insight.objects.create(segment=segment, rules=segment.rules)

    result = insight_generate_task.enqueue(insight.pk)

    assert result.return_value == "failed"
    insight.refresh_from_db()
    assert insight.status == Insight.Status.FAILED
    assert insight.error == "Generation stopped unexpectedly: disk on fire"


def test_generating_twice_does_nothing_the_second_time(segment: Segment, settings: Any) -> None:
    settings.AI_PROVIDER = "offline"
    insight = Insight.objects.create(segment=segment, rules=segment.rules)

    first = insight_generate(insight_id=insight.pk, may_retry=True)
    second = insight_generate(insight_id=insight.pk, may_retry=True)

    assert first is not None
    assert second is not None
    assert second.status == Insight.Status.SUCCEEDED
    assert second.attempts == 1
    assert second.finished_at == first.finished_at


def test_a_deleted_insight_is_a_no_op(db: None) -> None:
    assert insight_generate_task.enqueue(987654).return_value is None


def test_a_retry_is_enqueued_later_on_a_backend_that_can_wait(
    segment: Segment, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_gemini.default = error(429, "RESOURCE_EXHAUSTED", "Slow down")
    insight = Insight.objects.create(segment=segment, rules=segment.rules)
    database = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

    with override_settings(TASKS=database, INSIGHT_RETRY_BASE_SECONDS=30):
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            status = insight_generate_task.call(insight.pk, 1)

    assert status == "queued"
    insight.refresh_from_db()
    assert insight.status == Insight.Status.QUEUED
    assert (
        insight.error
        == "Attempt 1 failed, trying again: Gemini is unavailable (429 RESOURCE_EXHAUSTED):"
        " Slow down"
    )
    queued = DBTaskResult.objects.get()
    assert queued.args_kwargs == {"args": [insight.pk, 2], "kwargs": {}}
    assert queued.run_after is not None
    assert (
        before + timedelta(seconds=29) <= queued.run_after <= timezone.now() + timedelta(seconds=31)
    )
