"""The insight panel fragment in each state, its Regenerate action, and the suggestions form."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from minicrm.customers.models import Customer
from minicrm.insights.facts import rules_facts
from minicrm.insights.models import Insight
from minicrm.insights.narrator import narrate
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_update

from .conftest import HIGH_SPENDERS, TODAY, segment_create

Capture = Callable[..., Any]


@pytest.fixture
def segment(known_base: dict[str, Customer], settings: Any) -> Segment:
    settings.AI_PROVIDER = "offline"
    return segment_create("High spenders", HIGH_SPENDERS)


def succeeded(segment: Segment) -> Insight:
    facts = rules_facts(rules=parse_rules(segment.rules), today=TODAY)
    return Insight.objects.create(
        segment=segment,
        rules=segment.rules,
        status=Insight.Status.SUCCEEDED,
        provider="offline",
        model="rules-v1",
        facts=facts,
        content=narrate(facts).model_dump(),
        attempts=1,
    )


def panel(client: Client, segment: Segment) -> str:
    response = client.get(reverse("insights:segment_panel", args=[segment.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_empty_state_offers_to_generate(marketer_client: Client, segment: Segment) -> None:
    html = panel(marketer_client, segment)

    assert 'data-state="empty"' in html
    assert "No insights yet" in html
    assert "Generate insights" in html
    assert f'hx-post="/segments/{segment.pk}/insights/generate/"' in html
    assert "every 2s" not in html
    assert "insights/insights.css" in html
    assert "insights/insights.js" in html


def test_viewers_see_no_generate_button(viewer_client: Client, segment: Segment) -> None:
    html = panel(viewer_client, segment)

    assert "A marketer can generate insights for this segment." in html
    assert "hx-post" not in html


@pytest.mark.parametrize(
    ("status", "text"),
    [("queued", "Queued — waiting for the worker…"), ("running", "Generating insights…")],
)
def test_pending_states_poll_every_two_seconds(
    marketer_client: Client, segment: Segment, status: str, text: str
) -> None:
    Insight.objects.create(segment=segment, rules=segment.rules, status=status)

    html = panel(marketer_client, segment)

    assert f'data-state="{status}"' in html
    assert text in html
    assert 'hx-trigger="every 2s"' in html
    assert f'hx-get="/segments/{segment.pk}/insights/panel/"' in html
    assert "Regenerate" not in html


def test_succeeded_state_shows_the_card_and_its_charts(
    marketer_client: Client, segment: Segment
) -> None:
    insight = succeeded(segment)
    assert insight.content is not None

    html = panel(marketer_client, segment)

    assert 'data-state="succeeded"' in html
    assert "every 2s" not in html
    assert insight.content["headline"] in html
    for finding in insight.content["findings"]:
        assert finding.replace("'", "&#x27;") in html
    assert "Regenerate" in html
    assert "offline · rules-v1" in html
    assert "Rules changed since" not in html
    assert f'id="insight-charts-{insight.pk}"' in html
    assert html.count("Show as a table") == 3
    assert 'data-copy="' in html
    assert "More message ideas for a campaign" in html


def test_failed_state_says_why(marketer_client: Client, segment: Segment) -> None:
    Insight.objects.create(
        segment=segment,
        rules=segment.rules,
        status=Insight.Status.FAILED,
        provider="gemini",
        error="Gemini is unavailable (503 UNAVAILABLE): Overloaded",
        attempts=4,
    )

    html = panel(marketer_client, segment)

    assert 'data-state="failed"' in html
    assert "Insights could not be generated." in html
    assert "Gemini is unavailable (503 UNAVAILABLE): Overloaded" in html
    assert "Tried 4 times" in html
    assert "Try again" in html


def test_a_stale_insight_is_flagged(marketer_client: Client, segment: Segment) -> None:
    succeeded(segment)
    segment_update(
        segment_id=segment.pk,
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}],
            }
        ),
    )

    html = panel(marketer_client, segment)

    assert "Rules changed since" in html
    assert 'data-testid="insight-stale"' in html


def test_regenerate_queues_and_answers_with_the_pending_panel(
    marketer_client: Client, segment: Segment, django_capture_on_commit_callbacks: Capture
) -> None:
    succeeded(segment)
    url = reverse("insights:segment_generate", args=[segment.pk])

    response = marketer_client.post(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-state="queued"' in html
    assert "insights.js" not in html  # only the card: the page already has the script
    assert Insight.objects.filter(status=Insight.Status.QUEUED).count() == 1


def test_viewers_cannot_regenerate(viewer_client: Client, segment: Segment) -> None:
    response = viewer_client.post(reverse("insights:segment_generate", args=[segment.pk]))

    assert response.status_code == 403
    assert Insight.objects.count() == 0


def test_unknown_segment_is_404(marketer_client: Client, db: None) -> None:
    assert marketer_client.get(reverse("insights:segment_panel", args=[999])).status_code == 404
    assert marketer_client.post(reverse("insights:segment_generate", args=[999])).status_code == 404


def test_suggest_messages_form_gives_three_variants(
    marketer_client: Client, segment: Segment
) -> None:
    url = reverse("insights:suggest_messages", args=[segment.pk])

    form = marketer_client.get(url)
    answer = marketer_client.post(
        url, {"objective": "Thank our VIPs"}, headers={"HX-Request": "true"}
    )

    assert form.status_code == 200
    assert "What should the message achieve?" in form.content.decode()
    assert answer.status_code == 200
    html = answer.content.decode()
    assert html.count("/200 characters") == 3
    assert 'value="Thank our VIPs"' in html


def test_suggest_messages_without_an_objective_says_so(
    marketer_client: Client, segment: Segment
) -> None:
    url = reverse("insights:suggest_messages", args=[segment.pk])

    response = marketer_client.post(url, {"objective": "  "})

    assert response.status_code == 400
    assert "Say what the message should achieve." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()


def test_viewers_cannot_use_the_suggestions_form(viewer_client: Client, segment: Segment) -> None:
    url = reverse("insights:suggest_messages", args=[segment.pk])

    assert viewer_client.get(url).status_code == 403
