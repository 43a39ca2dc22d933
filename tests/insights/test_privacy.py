"""Nothing that identifies a customer ever leaves for the AI provider: only facts and the
marketer's own words. Every request body the fake Gemini server receives is checked."""

import json
from collections.abc import Callable
from typing import Any

from minicrm.customers.models import Customer
from minicrm.customers.services import customer_stats_recompute
from minicrm.insights.models import Insight
from minicrm.insights.services import audience_parse, insight_request, messages_suggest
from tests.factories import CustomerFactory

from .conftest import add_order, segment_create
from .fake_gemini import FakeGemini, answer
from .identities import DISTINCTIVE, identifying
from .test_gemini import CONTENT


def test_no_request_to_gemini_holds_a_name_email_phone_or_external_id(
    db: None, fake_gemini: FakeGemini, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    customers: list[Customer] = [
        CustomerFactory(**values, city=city)
        for values, city in zip(DISTINCTIVE, ["Mumbai", "Pune"], strict=True)
    ]
    for customer in customers:
        add_order(customer, "7000", "2025-06-01")
    customer_stats_recompute(customer_ids=[customer.pk for customer in customers])
    segment = segment_create(
        "Big spenders",
        {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 5000}]},
    )
    rules = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}]}
    messages = ["Hi {{ first_name }}, a.", "Hi {{ first_name }}, b.", "Hi {{ first_name }}, c."]
    fake_gemini.queue(
        answer(CONTENT),
        answer({"rules": rules, "explanation": "Customers in Pune."}),
        answer({"messages": messages}),
    )

    with django_capture_on_commit_callbacks(execute=True):
        insight = insight_request(segment_id=segment.pk, requested_by=None)
    parsed = audience_parse(text="customers from Pune")
    suggested = messages_suggest(segment_id=segment.pk, objective="thank them")

    assert Insight.objects.get(pk=insight.pk).status == Insight.Status.SUCCEEDED
    assert parsed.rules == rules
    assert suggested == messages
    assert len(fake_gemini.requests) == 3
    # The facts did reach Gemini (aggregates and city names) ...
    assert '"customers": 2' in fake_gemini.requests[0].prompt
    assert "Pune" in fake_gemini.requests[0].prompt
    # ... and nothing that identifies a person did, in any request, in any spelling.
    for request in fake_gemini.requests:
        body = (request.raw + json.dumps(request.body, ensure_ascii=False)).lower()
        leaked = [value for value in identifying() if value.lower() in body]
        assert leaked == [], f"{request.path} leaked {leaked}"
