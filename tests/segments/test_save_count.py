"""A saved segment shows the size of the rules it holds now: counted when saved, or "counting…"
(polling) until the background count lands when counting would hold the request too long."""

import json
from decimal import Decimal
from unittest import mock

from django.test import Client
from django.urls import reverse

from minicrm.core.statement_timeout import StatementTimeoutError
from minicrm.segments import services as segment_services
from minicrm.segments.models import Segment
from minicrm.segments.services import segment_size_record
from tests.factories import CustomerFactory


def spend_at_least(amount: int) -> str:
    condition = {"field": "total_spend", "operator": "gte", "value": amount}
    return json.dumps({"match": "all", "conditions": [condition]})


def summary(client: Client, segment: Segment) -> str:
    page = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    return page.split('data-testid="segment-size-summary"')[1].split("</span></span>")[0]


def save(client: Client, url: str, rules: str) -> Segment:
    response = client.post(url, {"name": "Spenders", "description": "", "rules": rules})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Segment.objects.get(name="Spenders")


def test_create_and_rules_edit_show_the_size_of_the_new_rules_at_once(
    marketer_client: Client,
) -> None:
    for spend in ("100", "500", "900"):
        CustomerFactory(total_spend=Decimal(spend), order_count=1)
    # Background work queued on commit never runs inside this test's transaction: what the page
    # shows was counted by the save itself.
    segment = save(marketer_client, reverse("segments:new"), spend_at_least(400))
    shown = summary(marketer_client, segment)
    assert '<strong data-testid="segment-size">2</strong>' in shown
    assert "counted" in shown
    assert "never" not in shown

    save(marketer_client, reverse("segments:edit", args=[segment.pk]), spend_at_least(800))
    shown = summary(marketer_client, segment)
    assert '<strong data-testid="segment-size">1</strong>' in shown
    assert "counting" not in shown


def test_rules_too_slow_to_count_at_save_show_counting_until_the_count_lands(
    marketer_client: Client,
) -> None:
    CustomerFactory(total_spend=Decimal("500"), order_count=1)
    segment = save(marketer_client, reverse("segments:new"), spend_at_least(400))
    too_slow = mock.patch.object(
        segment_services, "customers_matching", side_effect=StatementTimeoutError(0.5)
    )
    with too_slow:
        save(marketer_client, reverse("segments:edit", args=[segment.pk]), spend_at_least(600))
    segment.refresh_from_db()
    assert (segment.last_count, segment.last_counted_at) == (None, None)  # not the old size
    size_url = reverse("segments:size", args=[segment.pk])
    shown = summary(marketer_client, segment)
    assert "counting…" in shown
    assert f'hx-get="{size_url}"' in shown
    assert "every 2s" in shown

    segment_size_record(segment_id=segment.pk)  # what the queued task does
    fragment = marketer_client.get(size_url).content.decode()
    assert '<strong data-testid="segment-size">0</strong>' in fragment
    assert "hx-get" not in fragment  # counted: the polling stops
