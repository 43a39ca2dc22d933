"""The insights REST API: queue (202), list newest first, one insight, parse, suggest; roles."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer
from minicrm.insights.models import Insight
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_update
from tests.factories import UserFactory

from .conftest import HIGH_SPENDERS, segment_create
from .fake_gemini import FakeGemini, answer, error

Capture = Callable[..., Any]


@pytest.fixture
def viewer_client(db: None) -> Client:
    _token, raw = api_token_create(user=UserFactory(role=Role.VIEWER), name="viewer")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def segment(known_base: dict[str, Customer], settings: Any) -> Segment:
    settings.AI_PROVIDER = "offline"
    return segment_create("High spenders", HIGH_SPENDERS)


def post(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def test_queue_an_insight_is_202_and_the_worker_fills_it(
    api_client: Client, segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, f"/api/v1/segments/{segment.pk}/insights")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["segment_id"] == segment.pk
    assert body["is_stale"] is False
    detail = api_client.get(f"/api/v1/insights/{body['id']}").json()
    assert detail["status"] == "succeeded"
    assert detail["provider"] == "offline"
    assert detail["content"]["headline"]
    assert detail["facts"]["segment"]["customers"] == 3


def test_asking_again_while_one_is_pending_returns_that_one(
    api_client: Client, segment: Segment
) -> None:
    first = post(api_client, f"/api/v1/segments/{segment.pk}/insights").json()
    second = post(api_client, f"/api/v1/segments/{segment.pk}/insights").json()

    assert second["id"] == first["id"]
    assert Insight.objects.count() == 1


def test_a_pending_insight_from_long_ago_does_not_block_a_new_one(
    api_client: Client, segment: Segment
) -> None:
    stuck = Insight.objects.create(segment=segment, rules=segment.rules)
    Insight.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))

    body = post(api_client, f"/api/v1/segments/{segment.pk}/insights").json()

    assert body["id"] != stuck.pk


def test_list_is_newest_first_and_flags_stale_insights(
    api_client: Client, segment: Segment
) -> None:
    old = Insight.objects.create(segment=segment, rules=segment.rules, status="succeeded")
    segment_update(
        segment_id=segment.pk,
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}],
            }
        ),
    )
    segment.refresh_from_db()
    new = Insight.objects.create(segment=segment, rules=segment.rules, status="failed")

    body = api_client.get(f"/api/v1/segments/{segment.pk}/insights").json()

    assert body["count"] == 2
    assert [(item["id"], item["is_stale"]) for item in body["items"]] == [
        (new.pk, False),
        (old.pk, True),
    ]


def test_viewers_read_but_cannot_queue(viewer_client: Client, segment: Segment) -> None:
    insight = Insight.objects.create(segment=segment, rules=segment.rules)

    assert viewer_client.get(f"/api/v1/segments/{segment.pk}/insights").status_code == 200
    assert viewer_client.get(f"/api/v1/insights/{insight.pk}").status_code == 200
    response = post(viewer_client, f"/api/v1/segments/{segment.pk}/insights")
    assert response.status_code == 403
    assert response.json() == {"detail": "This needs the marketer role."}
    assert Insight.objects.count() == 1
    assert post(viewer_client, "/api/v1/segments/parse", {"text": "from Pune"}).status_code == 403
    suggest = post(
        viewer_client, f"/api/v1/segments/{segment.pk}/suggest-messages", {"objective": "hi"}
    )
    assert suggest.status_code == 403


def test_anonymous_calls_are_401(client: Client, segment: Segment) -> None:
    assert client.get(f"/api/v1/segments/{segment.pk}/insights").status_code == 401
    assert post(client, f"/api/v1/segments/{segment.pk}/insights").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/segments/999999/insights"),
        ("get", "/api/v1/segments/999999/insights"),
        ("get", "/api/v1/insights/999999"),
        ("post", "/api/v1/segments/999999/suggest-messages"),
    ],
)
def test_unknown_ids_are_404(api_client: Client, db: None, method: str, path: str) -> None:
    if method == "post":
        response = post(api_client, path, {"objective": "win back"})
    else:
        response = api_client.get(path)

    assert response.status_code == 404
    assert response.json()["detail"] in {"No such segment.", "No such insight."}
    assert Insight.objects.count() == 0


def test_parse_turns_text_into_rules_with_an_explanation(api_client: Client, settings: Any) -> None:
    settings.AI_PROVIDER = "offline"

    response = post(
        api_client,
        "/api/v1/segments/parse",
        {"text": "customers who spent over 5000 and have not ordered in 90 days"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "rules": {
            "match": "all",
            "conditions": [
                {"field": "total_spend", "operator": "gt", "value": 5000},
                {"field": "last_order_date", "operator": "not_in_last_days", "value": 90},
            ],
        },
        "explanation": "Understood as: Total spend over ₹5,000 and no order in the last 90 days."
        " Amounts are in INR (₹).",
        "unparsed": [],
    }


def test_parse_says_what_it_left_out(api_client: Client, settings: Any) -> None:
    settings.AI_PROVIDER = "offline"

    body = post(api_client, "/api/v1/segments/parse", {"text": "from Pune and love shoes"}).json()

    assert body["rules"] == {
        "match": "all",
        "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}],
    }
    assert body["explanation"] == (
        'Understood as: City is "Pune". Left out because I could not understand it: “love shoes”.'
    )
    assert body["unparsed"] == ["love shoes"]


@pytest.mark.parametrize("text", ["", "   "])
def test_parse_with_empty_text_is_422(api_client: Client, db: None, text: str) -> None:
    response = post(api_client, "/api/v1/segments/parse", {"text": text})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "text"]


def test_parse_with_nothing_understood_is_422_naming_the_text(
    api_client: Client, settings: Any
) -> None:
    settings.AI_PROVIDER = "offline"

    response = post(api_client, "/api/v1/segments/parse", {"text": "loyal fans of shoes"})

    assert response.status_code == 422
    assert response.json() == {
        "detail": "I could not turn “loyal fans of shoes” into rules. Try phrases like “spent over"
        " 5000”, “ordered in the last 30 days”, “from Mumbai”, “tagged vip” or “never ordered”.",
        "field": "text",
    }


def test_parse_with_gemini_validates_the_rules_it_proposes(
    api_client: Client, fake_gemini: FakeGemini
) -> None:
    bad = {
        "match": "all",
        "conditions": [{"field": "total_spend", "operator": "between", "value": [9000, 10]}],
    }
    fake_gemini.queue(answer({"rules": bad, "explanation": "Spent a range."}))

    response = post(api_client, "/api/v1/segments/parse", {"text": "spent 10 to 9000"})

    assert response.status_code == 502
    assert response.json() == {
        "detail": "The proposed rules are not valid: conditions[0].value: 'between' needs"
        " low ≤ high"
    }


def test_parse_when_gemini_is_down_is_503(api_client: Client, fake_gemini: FakeGemini) -> None:
    fake_gemini.default = error(503, "UNAVAILABLE", "Overloaded")

    response = post(api_client, "/api/v1/segments/parse", {"text": "from Pune"})

    assert response.status_code == 503
    assert response.json() == {"detail": "Gemini is unavailable (503 UNAVAILABLE): Overloaded"}


def test_suggest_messages_gives_three_variants(api_client: Client, segment: Segment) -> None:
    response = post(
        api_client,
        f"/api/v1/segments/{segment.pk}/suggest-messages",
        {"objective": "Thank our VIPs"},
    )

    assert response.status_code == 200
    messages = response.json()["messages"]
    assert len(messages) == 3
    assert all(len(message) <= 200 and "{{ first_name }}" in message for message in messages)


def test_suggest_messages_without_an_objective_is_422(api_client: Client, segment: Segment) -> None:
    response = post(
        api_client, f"/api/v1/segments/{segment.pk}/suggest-messages", {"objective": ""}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "objective"]
