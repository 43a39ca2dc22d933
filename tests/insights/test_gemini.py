"""The Gemini provider through the real google-genai SDK against a fake server on 127.0.0.1."""

import json
import time
from typing import Any

import pytest

from minicrm.insights.providers import (
    GeminiProvider,
    ProviderError,
    ProviderTransientError,
    get_provider,
)

from .fake_gemini import FakeGemini, Reply, answer, error, slow

FACTS = {"version": 1, "segment": {"customers": 3, "share_of_customers": 0.5}, "base": {}}
CONTENT = {
    "headline": "Half the customers bring most of the revenue",
    "findings": ["One.", "Two.", "Three."],
    "recommendations": ["Do this.", "Do that."],
    "suggested_message": "Hi {{ first_name }}, thanks for shopping with us.",
}


def test_get_provider_reads_settings_at_call_time(settings: Any) -> None:
    settings.AI_PROVIDER = "offline"
    assert get_provider().name == "offline"

    settings.AI_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = "key"
    assert get_provider().name == "gemini"

    settings.GEMINI_API_KEY = ""
    with pytest.raises(ProviderError, match="GEMINI_API_KEY is not set"):
        get_provider()

    settings.AI_PROVIDER = "oracle"
    with pytest.raises(ProviderError, match="Unknown AI_PROVIDER 'oracle'"):
        get_provider()


def test_insight_success_sends_the_facts_with_a_json_schema(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(answer(CONTENT))

    content = GeminiProvider().insight(FACTS)

    assert content.model_dump() == CONTENT
    [request] = fake_gemini.requests
    assert request.path.endswith("/models/gemini-test:generateContent")
    assert request.headers["x-goog-api-key"] == "test-key"
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert set(schema["required"]) == {
        "headline",
        "findings",
        "recommendations",
        "suggested_message",
    }
    assert schema["properties"]["findings"]["min_items"] == 3
    assert "careful marketing analyst" in request.body["systemInstruction"]["parts"][0]["text"]
    assert request.prompt == f"FACTS:\n{json.dumps(FACTS)}"


def test_a_429_is_retried_then_succeeds(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(error(429, "RESOURCE_EXHAUSTED", "Slow down"), answer(CONTENT))

    content = GeminiProvider().insight(FACTS)

    assert content.headline == CONTENT["headline"]
    assert len(fake_gemini.requests) == 2


def test_a_500_that_persists_is_a_transient_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.default = error(500, "INTERNAL", "Boom")

    with pytest.raises(ProviderTransientError) as raised:
        GeminiProvider().insight(FACTS)

    assert raised.value.message == "Gemini is unavailable (500 INTERNAL): Boom"
    assert len(fake_gemini.requests) == 3  # GEMINI_RETRY_ATTEMPTS


def test_a_client_error_is_not_retried(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(error(400, "INVALID_ARGUMENT", "Bad schema"))

    with pytest.raises(ProviderError) as raised:
        GeminiProvider().insight(FACTS)

    assert not raised.value.transient
    assert raised.value.message == "Gemini refused the request (400 INVALID_ARGUMENT): Bad schema"
    assert len(fake_gemini.requests) == 1


def test_a_timeout_is_retried_then_a_transient_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.default = slow(2.0)

    started = time.monotonic()
    with pytest.raises(ProviderTransientError) as raised:
        GeminiProvider().insight(FACTS)

    assert raised.value.message == "Gemini did not answer within 0.5 seconds."
    assert len(fake_gemini.requests) == 3
    assert time.monotonic() - started < 3.5  # three 0.5 s timeouts plus short backoffs


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (answer("{not json"), "Gemini returned malformed JSON (the answer: Invalid JSON: key"),
        (answer({"headline": "Only a headline"}), "Gemini returned malformed JSON (findings:"),
        (
            answer({**CONTENT, "findings": ["Only one."]}),
            "Gemini returned malformed JSON (findings: List should have at least 3 items",
        ),
        (Reply(200, json.dumps({"candidates": []})), "Gemini returned no content"),
        (Reply(200, "<html>proxy error</html>"), "Gemini sent a response that is not JSON"),
    ],
)
def test_malformed_answers_are_clear_errors(
    fake_gemini: FakeGemini, reply: Reply, message: str
) -> None:
    fake_gemini.queue(reply)

    with pytest.raises(ProviderError) as raised:
        GeminiProvider().insight(FACTS)

    assert raised.value.message.startswith(message)
    assert not raised.value.transient


def test_parse_audience_uses_a_schema_constrained_to_the_rule_format(
    fake_gemini: FakeGemini,
) -> None:
    rules = {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gt", "value": 5000},
            {"field": "email", "operator": "is_empty", "value": None},
            {
                "match": "any",
                "conditions": [{"field": "city", "operator": "in", "value": ["Pune", "Goa"]}],
            },
        ],
    }
    fake_gemini.queue(answer({"rules": rules, "explanation": "Big spenders without email."}))

    result = GeminiProvider().parse_audience("spent over 5000, no email, from Pune or Goa")

    assert result.rules == {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gt", "value": 5000.0},
            {"field": "email", "operator": "is_empty"},
            {
                "match": "any",
                "conditions": [{"field": "city", "operator": "in", "value": ["Pune", "Goa"]}],
            },
        ],
    }
    assert result.explanation == "Big spenders without email."
    [request] = fake_gemini.requests
    assert request.prompt == "spent over 5000, no email, from Pune or Goa"
    schema = request.body["generationConfig"]["responseSchema"]
    condition = schema["properties"]["rules"]["properties"]["conditions"]["items"]["any_of"][0]
    assert "signup_date" in condition["properties"]["field"]["enum"]
    assert "not_in_last_days" in condition["properties"]["operator"]["enum"]


def test_parse_audience_rejects_an_unknown_field_from_the_model(fake_gemini: FakeGemini) -> None:
    bad = {"match": "all", "conditions": [{"field": "shoe_size", "operator": "gt", "value": 9}]}
    fake_gemini.queue(answer({"rules": bad, "explanation": "Big feet."}))

    with pytest.raises(ProviderError, match=r"malformed JSON \(rules\.conditions\.0"):
        GeminiProvider().parse_audience("big feet")


def test_suggest_messages_returns_three_variants(fake_gemini: FakeGemini) -> None:
    messages = ["Hi {{ first_name }}, one.", "Hi {{ first_name }}, two.", "Hey {{ first_name }}!"]
    fake_gemini.queue(answer({"messages": messages}))

    assert GeminiProvider().suggest_messages(FACTS, "win back") == messages
    assert fake_gemini.requests[0].prompt.startswith("OBJECTIVE: win back\nFACTS:\n")


def test_suggest_messages_refuses_a_message_over_200_characters(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(answer({"messages": ["a" * 201, "b", "c"]}))

    with pytest.raises(ProviderError, match="longer than 200 characters"):
        GeminiProvider().suggest_messages(FACTS, "win back")
