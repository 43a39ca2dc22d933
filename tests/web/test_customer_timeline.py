"""A customer's activity timeline: orders, campaign messages and the unsubscribe, newest first,
paged by cursor, and only ever that customer's own events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from minicrm.campaigns.models import Campaign, Delivery
from minicrm.customers.models import Customer, Order
from minicrm.web.timeline import TimelineCursor, customer_timeline
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 1, 9, tzinfo=UTC)


def at(hours: int) -> datetime:
    return START + timedelta(hours=hours)


def _order(customer: Customer, key: str, hours: int) -> Order:
    return Order.objects.create(
        external_id=key, customer=customer, amount=Decimal("120.00"), ordered_at=at(hours)
    )


def _delivery(
    customer: Customer, campaign: Campaign, *, sent: int | None, created: int, status: str
) -> Delivery:
    return Delivery.objects.create(
        campaign=campaign,
        customer=customer,
        status=status,
        subject=f"{campaign.name} for you",
        sent_at=at(sent) if sent is not None else None,
        created_at=at(created),
    )


def _keys(events: list[Any]) -> list[tuple[str, int]]:
    return [(event.kind, event.id) for event in events]


def _all_pages(customer: Customer, limit: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    before: TimelineCursor | None = None
    for _ in range(50):
        page = customer_timeline(customer=customer, before=before, limit=limit)
        assert len(page.events) <= limit
        seen += _keys(page.events)
        if page.next_cursor is None:
            return seen
        before = page.next_cursor
    raise AssertionError("the timeline never ended")


@pytest.fixture
def story() -> dict[str, Any]:
    """Asha's orders, messages and unsubscribe interleaved in time, and Ben's events between."""
    asha = CustomerFactory(external_id="asha", unsubscribed_at=at(60))
    ben = CustomerFactory(external_id="ben")
    spring = Campaign.objects.create(name="Spring sale", template="Hi", subject="Spring")
    summer = Campaign.objects.create(name="Summer drop", template="Hi", subject="Summer")
    winter = Campaign.objects.create(name="Winter", template="Hi", holdout_percent=10)
    events = {
        "o1": _order(asha, "A-1", 0),
        "m1": _delivery(asha, spring, sent=10, created=9, status="delivered"),
        "o2": _order(asha, "A-2", 20),
        # Held out of the campaign: never sent, placed at the launch (its row's creation).
        "m2": _delivery(asha, winter, sent=None, created=30, status="held_out"),
        "m3": _delivery(asha, summer, sent=40, created=39, status="failed"),
        "o3": _order(asha, "A-3", 50),
    }
    _order(ben, "B-1", 5)
    _order(ben, "B-2", 55)
    _delivery(ben, spring, sent=11, created=9, status="sent")
    _delivery(ben, summer, sent=65, created=39, status="delivered")
    return {"asha": asha, "ben": ben, **events}


def test_the_three_kinds_merge_newest_first_with_only_the_customers_events(
    story: dict[str, Any],
) -> None:
    page = customer_timeline(customer=story["asha"])

    assert _keys(page.events) == [
        ("consent", story["asha"].pk),
        ("order", story["o3"].pk),
        ("message", story["m3"].pk),
        ("message", story["m2"].pk),
        ("order", story["o2"].pk),
        ("message", story["m1"].pk),
        ("order", story["o1"].pk),
    ]
    assert [event.at for event in page.events] == [at(h) for h in (60, 50, 40, 30, 20, 10, 0)]
    assert page.next_cursor is None
    ben_orders = set(Order.objects.filter(customer=story["ben"]).values_list("pk", flat=True))
    ben_messages = set(Delivery.objects.filter(customer=story["ben"]).values_list("pk", flat=True))
    assert not {pk for kind, pk in _keys(page.events) if kind == "order"} & ben_orders
    assert not {pk for kind, pk in _keys(page.events) if kind == "message"} & ben_messages


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7])
def test_pages_of_any_size_give_every_event_once_in_order(
    story: dict[str, Any], limit: int
) -> None:
    assert _all_pages(story["asha"], limit) == _keys(
        customer_timeline(customer=story["asha"]).events
    )


def test_events_at_the_same_moment_are_neither_lost_nor_repeated_across_pages() -> None:
    customer = CustomerFactory(unsubscribed_at=at(1))
    campaigns = [Campaign.objects.create(name=f"C{n}", template="Hi") for n in range(3)]
    orders = [_order(customer, f"T-{n}", 1) for n in range(3)]
    messages = [
        _delivery(customer, campaign, sent=1, created=0, status="sent") for campaign in campaigns
    ]

    expected = [
        ("consent", customer.pk),
        *[("message", m.pk) for m in reversed(messages)],
        *[("order", o.pk) for o in reversed(orders)],
    ]
    for limit in (1, 2, 4):
        assert _all_pages(customer, limit) == expected


def test_a_customer_with_no_activity_has_an_empty_timeline(viewer_client: Client) -> None:
    customer = CustomerFactory()

    assert customer_timeline(customer=customer).events == []
    page = viewer_client.get(reverse("web:customer_timeline", args=[customer.pk]))
    assert "No activity yet" in page.content.decode()


def test_the_fragment_shows_a_page_and_links_to_the_older_events(
    viewer_client: Client, story: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("minicrm.web.views_timeline.TIMELINE_PAGE_SIZE", 4)
    url = reverse("web:customer_timeline", args=[story["asha"].pk])

    first = viewer_client.get(url)

    html = first.content.decode()
    assert html.count('data-testid="timeline-event"') == 4
    assert '<ol class="timeline"' in html
    for text in ["Unsubscribed from every campaign", "A-3", "Summer drop", "Failed", "Held out"]:
        assert text in html, text
    assert "B-2" not in html
    assert "Spring sale" not in html
    cursor = first.context["timeline"].next_cursor
    assert cursor is not None
    older = viewer_client.get(url, {"before": cursor.encode()})
    older_html = older.content.decode()
    assert '<ol class="timeline"' not in older_html  # items to append to the list
    assert older_html.count('data-testid="timeline-event"') == 3
    assert "Spring sale" in older_html
    assert "A-1" in older_html
    assert 'data-testid="timeline-more"' not in older_html


@pytest.mark.parametrize("before", ["nonsense", "2025-01-01T00:00:00|9|1", "2025-01-01|0|1"])
def test_a_bad_cursor_is_a_bad_request(
    viewer_client: Client, story: dict[str, Any], before: str
) -> None:
    url = reverse("web:customer_timeline", args=[story["asha"].pk])
    assert viewer_client.get(url, {"before": before}).status_code == 400


def test_an_unknown_customer_has_no_timeline(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("web:customer_timeline", args=[999999])).status_code == 404


def test_a_page_costs_the_same_queries_however_long_the_history(
    viewer_client: Client, story: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    Order.objects.bulk_create(
        Order(
            external_id=f"L-{n}", customer=story["asha"], amount=Decimal(1), ordered_at=at(100 + n)
        )
        for n in range(300)
    )
    url = reverse("web:customer_timeline", args=[story["asha"].pk])
    # Session and user, the customer with tags, orders, messages with their campaigns.
    with django_assert_max_num_queries(6):
        response = viewer_client.get(url)
    assert response.content.decode().count('data-testid="timeline-event"') == 20
