"""The dashboard: every figure follows the date range, the RFM grid, lists, caching, the page."""

import dataclasses
import html
import json
import math
import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.customers.models import Customer
from minicrm.customers.services import orders_bulk_upsert
from minicrm.segments.compiler import customers_matching
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.web.date_range import DateRange, date_range_parse, date_range_preset
from minicrm.web.rfm import rfm_compute
from minicrm.web.selectors import (
    CACHE_KEY,
    KEEP_SECONDS,
    bucket_days,
    dashboard_compute,
    dashboard_get,
    dashboard_is_stale,
    dashboard_refresh,
)
from minicrm.web.tasks import dashboard_refresh_task
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
DASH = "\N{EN DASH}"

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)  # a Thursday
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def _orders(customer_id: str, *orders: tuple[str, str, str]) -> None:
    rows = [
        {
            "external_id": f"{customer_id}-{index}",
            "customer_external_id": customer_id,
            "amount": amount,
            "ordered_at": moment,
            "status": status,
        }
        for index, (moment, amount, status) in enumerate(orders)
    ]
    result = orders_bulk_upsert(rows=rows)
    assert result.errors == []


def _last(days: int) -> DateRange:
    return date_range_preset(days=days, today=TODAY)


@pytest.fixture
def base() -> None:
    for key in "ABCDEF":
        CustomerFactory(external_id=key)
    _orders(
        "A",
        ("2025-03-18T09:00:00+00:00", "1000.00", "completed"),
        ("2025-03-03T09:00:00+00:00", "500.00", "completed"),
        ("2025-02-10T09:00:00+00:00", "300.00", "completed"),
    )
    _orders(
        "B",
        ("2025-02-05T09:00:00+00:00", "200.00", "completed"),
        ("2025-03-10T09:00:00+00:00", "999.00", "cancelled"),
    )
    _orders("C", ("2024-08-01T09:00:00+00:00", "400.00", "completed"))
    _orders("D", ("2023-01-01T09:00:00+00:00", "100.00", "completed"))
    _orders("F", ("2024-11-01T09:00:00+00:00", "50.00", "completed"))
    # E never ordered.


# --- The range ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected", "message"),
    [
        ({}, (date(2025, 2, 19), TODAY, 30), ""),
        ({"preset": "90"}, (date(2024, 12, 21), TODAY, 90), ""),
        ({"preset": "365"}, (date(2024, 3, 21), TODAY, 365), ""),
        ({"preset": "7"}, (date(2025, 2, 19), TODAY, 30), ""),  # not offered: the default
        (
            {"preset": "custom", "start": "2025-01-01", "end": "2025-01-31"},
            (date(2025, 1, 1), date(2025, 1, 31), None),
            "",
        ),
        (  # swapped dates are taken the right way round; the future stops at today
            {"preset": "custom", "start": "2025-04-30", "end": "2025-03-01"},
            (date(2025, 3, 1), TODAY, None),
            "",
        ),
        (
            {"preset": "custom", "start": "2025-01-01", "end": ""},
            (date(2025, 2, 19), TODAY, 30),
            "Pick both dates.",
        ),
        (
            {"preset": "custom", "start": "2000-01-01", "end": "2025-01-01"},
            (date(2025, 2, 19), TODAY, 30),
            "A range holds at most 3,650 days.",
        ),
    ],
)
def test_the_range_comes_from_the_query(
    query: dict[str, str], expected: tuple[date, date, int | None], message: str
) -> None:
    arguments = {"preset": None, "start": None, "end": None, **query}

    date_range, problem = date_range_parse(**arguments, today=TODAY)

    assert (date_range.start, date_range.end, date_range.preset) == expected
    assert problem == message


def test_buckets_are_days_weeks_from_monday_or_months_clipped_to_the_range() -> None:
    days = bucket_days(_last(30), "day")
    assert len(days) == 30
    assert days[0] == (date(2025, 2, 19), date(2025, 2, 19))
    weeks = bucket_days(_last(90), "week")
    assert weeks[0] == (date(2024, 12, 21), date(2024, 12, 22))  # a Saturday to the Sunday
    assert weeks[1] == (date(2024, 12, 23), date(2024, 12, 29))
    assert weeks[-1] == (date(2025, 3, 17), TODAY)
    months = bucket_days(_last(365), "month")
    assert months[0] == (date(2024, 3, 21), date(2024, 3, 31))
    assert months[-1] == (date(2025, 3, 1), TODAY)
    assert len(months) == 13


# --- Every figure follows the range ------------------------------------------------------------


def test_the_figures_of_the_last_30_days(base: None) -> None:
    data = dashboard_compute(date_range=_last(30), now=NOW)

    # 19 Feb - 20 Mar: A's 1000 and 500 (B's cancelled order does not count).
    assert (data.revenue, data.orders) == (Decimal("1500.00"), 2)
    assert data.average_order_value == Decimal("750.00")
    # 20 Jan - 18 Feb: A's 300 and B's 200.
    assert (data.previous_revenue, data.previous_orders) == (Decimal("500.00"), 2)
    assert data.previous_average_order_value == Decimal("250.00")
    assert (data.new_customers, data.previous_new_customers) == (0, 2)  # A and B began in Feb
    assert data.customers == 6
    assert data.unit == "day"
    revenue = {bucket.start: bucket.revenue for bucket in data.buckets if bucket.revenue}
    assert revenue == {date(2025, 3, 3): Decimal("500.00"), date(2025, 3, 18): Decimal("1000.00")}


def test_the_figures_of_the_last_365_days(base: None) -> None:
    data = dashboard_compute(date_range=_last(365), now=NOW)

    # Everything but D's order of 2023.
    assert (data.revenue, data.orders) == (Decimal("2450.00"), 6)
    assert (data.previous_revenue, data.previous_orders) == (Decimal("0"), 0)
    assert data.previous_average_order_value is None
    assert data.new_customers == 4  # A, B, C, F had their first order in the range
    assert data.unit == "month"
    by_month = {bucket.start: (bucket.revenue, bucket.new_customers) for bucket in data.buckets}
    assert by_month[date(2024, 8, 1)] == (Decimal("400.00"), 1)
    assert by_month[date(2024, 11, 1)] == (Decimal("50.00"), 1)
    assert by_month[date(2025, 2, 1)] == (Decimal("500.00"), 2)
    assert by_month[date(2025, 3, 1)] == (Decimal("1500.00"), 0)


def test_a_custom_range_in_the_past(base: None) -> None:
    date_range = DateRange(start=date(2024, 7, 1), end=date(2024, 11, 30), preset=None)

    data = dashboard_compute(date_range=date_range, now=NOW)

    assert (data.revenue, data.orders, data.new_customers) == (Decimal("450.00"), 2, 2)
    assert data.unit == "month"
    # The RFM grid holds those whose last order fell in the range: C and F.
    assert data.rfm.customers == 2
    assert data.rfm.recency[0].low == (TODAY - date(2024, 11, 30)).days


# --- RFM ---------------------------------------------------------------------------------------


def _random_buyers(count: int, seed: int) -> None:
    rng = random.Random(seed)
    Customer.objects.bulk_create(
        Customer(
            external_id=f"R-{index}",
            order_count=(orders := rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 9])),
            total_spend=Decimal(rng.randint(100, 90000)) / 100 * orders,
            last_order_at=NOW - timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23)),
            first_order_at=NOW - timedelta(days=500),
        )
        for index in range(count)
    )


def _edges(values: list[Any]) -> list[Any]:
    ordered = sorted(values)
    return [ordered[math.ceil(len(ordered) * q / 5) - 1] for q in range(1, 5)]


@pytest.mark.parametrize("seed", [1, 2])
def test_rfm_edges_and_counts_match_a_python_computation(seed: int) -> None:
    _random_buyers(120, seed)
    date_range = _last(365)
    start, end = date_range.bounds()
    buyers = [
        customer
        for customer in Customer.objects.all()
        if customer.last_order_at and start <= customer.last_order_at < end
    ]
    days = [(TODAY - timezone.localdate(c.last_order_at)).days for c in buyers]  # type: ignore[arg-type]

    rfm = rfm_compute(date_range=date_range, today=TODAY)

    assert rfm.customers == len(buyers)
    # The bands' upper edges are the quintile edges, merged where equal.
    assert [band.high for band in rfm.recency[:-1]] == sorted(set(_edges(days)))[
        : len(rfm.recency) - 1
    ]
    assert rfm.recency[0].low == 0
    assert rfm.recency[-1].high == 364
    assert [band.high for band in rfm.frequency[:-1]] == sorted(
        set(_edges([c.order_count for c in buyers]))
    )
    assert [band.high for band in rfm.monetary[:-1]] == sorted(
        set(_edges([c.total_spend for c in buyers]))
    )
    # Each cell counts exactly the buyers inside both its bands, and every buyer is in one cell.
    for r, recency in enumerate(rfm.recency):
        for f, frequency in enumerate(rfm.frequency):
            inside = [
                c
                for c, d in zip(buyers, days, strict=True)
                if recency.low <= d <= recency.high
                and frequency.low <= c.order_count <= (frequency.high or c.order_count)
            ]
            cell = rfm.cells[r][f]
            assert cell.customers == len(inside)
            if inside:
                spend = sum((c.total_spend for c in inside), Decimal("0")) / len(inside)
                assert cell.average_spend == spend.quantize(Decimal("0.01"))
    assert sum(cell.customers for row in rfm.cells for cell in row) == len(buyers)


def test_each_cells_rules_select_exactly_its_customers() -> None:
    _random_buyers(150, 3)
    rfm = rfm_compute(date_range=_last(90), today=TODAY)

    assert rfm.customers
    for row in rfm.cells:
        for cell in row:
            rules = parse_rules(cell.rules)  # what the builder link carries parses as is
            assert customers_matching(rules, today=TODAY).count() == cell.customers, cell.rules


def test_rfm_without_buyers_in_the_range_is_empty(base: None) -> None:
    date_range = DateRange(start=date(2020, 1, 1), end=date(2020, 12, 31), preset=None)

    rfm = rfm_compute(date_range=date_range, today=TODAY)

    assert (rfm.customers, rfm.cells) == (0, [])


# --- Segments and campaigns --------------------------------------------------------------------


def test_the_largest_segments_with_their_change_over_the_range(base: None) -> None:
    small = Segment.objects.create(name="Small", last_count=3)
    large = Segment.objects.create(name="Large", last_count=50)
    Segment.objects.create(name="Never counted")
    for day, size in [(date(2025, 1, 1), 10), (date(2025, 3, 1), 40), (date(2025, 3, 10), 45)]:
        SegmentSize.objects.create(
            segment=large, day=day, rules_hash="h", counted_at=NOW, size=size
        )

    segments = dashboard_compute(date_range=_last(30), now=NOW).segments

    assert [(s.name, s.size, s.points, s.change) for s in segments] == [
        ("Large", 50, [40, 45], 10),  # 1 Jan is before the range
        ("Small", 3, [], None),
    ]
    assert small.pk == segments[1].pk


def test_recent_campaigns_in_the_range_carry_their_attributed_revenue(base: None) -> None:
    customer = Customer.objects.get(external_id="A")
    sent = datetime(2025, 3, 15, 9, 0, tzinfo=UTC)
    inside = Campaign.objects.create(name="Spring", template="Hi", snapshot_at=sent, sent=1)
    Campaign.objects.filter(pk=inside.pk).update(created_at=sent)
    Delivery.objects.create(
        campaign=inside, customer=customer, status=Delivery.Status.DELIVERED, sent_at=sent
    )
    old = Campaign.objects.create(name="Old", template="Hi")
    Campaign.objects.filter(pk=old.pk).update(created_at=datetime(2024, 1, 1, tzinfo=UTC))

    campaigns = dashboard_compute(date_range=_last(30), now=NOW).campaigns

    assert [campaign.name for campaign in campaigns] == ["Spring"]
    # A's order of 1000 on 18 Mar falls within 14 days of the message.
    assert campaigns[0].attributed_revenue == Decimal("1000.00")  # type: ignore[attr-defined]


# --- Caching -----------------------------------------------------------------------------------


def _never(date_range: DateRange) -> None:
    raise AssertionError(f"no refresh expected for {date_range}")


def test_the_numbers_are_cached_per_range_once_there_are_customers() -> None:
    today = timezone.localdate()
    thirty, ninety = (
        date_range_preset(days=30, today=today),
        date_range_preset(days=90, today=today),
    )
    assert dashboard_get(date_range=thirty, refresh=_never).customers == 0
    CustomerFactory()
    first = dashboard_get(date_range=thirty, refresh=_never)
    assert first.customers == 1  # an empty base is not cached

    CustomerFactory()

    again = dashboard_get(date_range=thirty, refresh=_never)
    assert (again.customers, again.computed_at) == (1, first.computed_at)
    assert dashboard_get(date_range=ninety, refresh=_never).customers == 2  # its own entry
    cache.clear()
    assert dashboard_get(date_range=thirty, refresh=_never).customers == 2


def test_old_numbers_are_shown_while_a_refresh_is_asked_for_once() -> None:
    CustomerFactory()
    thirty = date_range_preset(days=30, today=timezone.localdate())
    computed = dashboard_get(date_range=thirty, refresh=_never)
    old = dataclasses.replace(computed, computed_at=computed.computed_at - timedelta(minutes=6))
    cache.set(f"{CACHE_KEY}:30", old, KEEP_SECONDS)
    CustomerFactory()
    asked: list[DateRange] = []

    shown = [dashboard_get(date_range=thirty, refresh=asked.append) for _ in range(3)]

    assert [dashboard.customers for dashboard in shown] == [1, 1, 1]
    assert asked == [thirty]  # once, not on every visit
    assert dashboard_is_stale(shown[0], date_range=thirty)
    # The task computes and keeps the new numbers.
    assert dashboard_refresh_task.call(thirty.start.isoformat(), thirty.end.isoformat(), 30) == 2
    assert dashboard_get(date_range=thirty, refresh=_never).customers == 2


def test_yesterdays_numbers_of_a_preset_are_shown_while_todays_are_computed() -> None:
    CustomerFactory()
    today = timezone.localdate()
    yesterday = date_range_preset(days=30, today=today - timedelta(days=1))
    dashboard_refresh(date_range=yesterday)
    asked: list[DateRange] = []

    shown = dashboard_get(date_range=date_range_preset(days=30, today=today), refresh=asked.append)

    assert shown.date_range == yesterday
    assert [asked_range.end for asked_range in asked] == [today]


def test_the_page_says_when_its_numbers_were_computed_and_refreshes_old_ones(
    client: Client, immediate_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))
    _seed_recent()
    page = client.get(reverse("web:dashboard")).content.decode()
    computed = cache.get(f"{CACHE_KEY}:30")
    assert (
        f"Computed at {timezone.localtime(computed.computed_at):%H:%M} · refreshes every 5 minutes"
        in page
    )
    cache.set(
        f"{CACHE_KEY}:30",
        dataclasses.replace(computed, computed_at=computed.computed_at - timedelta(minutes=6)),
        KEEP_SECONDS,
    )
    CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True) as queued:
        stale = client.get(reverse("web:dashboard")).content.decode()
    assert len(queued) == 1
    # The refresh ran in place (immediate tasks): the next visit has the new numbers.
    fresh = client.get(reverse("web:dashboard")).content.decode()

    assert "newer numbers are being computed" in stale
    assert "3 customers in all" not in stale
    assert "3 customers in all" in fresh
    assert "refreshes every 5 minutes" in fresh


# --- The page ----------------------------------------------------------------------------------


def _seed_recent() -> None:
    now = timezone.now()
    for key in "AB":
        CustomerFactory(external_id=key, first_name="Zelda", last_name=f"Quixote{key}")
    _orders(
        "A",
        ((now - timedelta(days=1)).isoformat(), "100.00", "completed"),
        ((now - timedelta(days=40)).isoformat(), "300.00", "completed"),
    )


def _stat(page: str, name: str) -> str:
    card = page[page.index(f'data-stat="{name}"') :]
    card = card[card.index('class="stat-value') :]
    return card[card.index(">") + 1 : card.index("</div>")]


def test_a_viewer_sees_the_figures_follow_the_range(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))
    _seed_recent()

    last_30 = client.get(reverse("web:dashboard")).content.decode()
    last_90 = client.get(reverse("web:dashboard"), {"range": "90"}).content.decode()

    assert (_stat(last_30, "revenue"), _stat(last_30, "orders"), _stat(last_30, "new")) == (
        "₹100",
        "1",
        "0",
    )
    assert (_stat(last_90, "revenue"), _stat(last_90, "orders"), _stat(last_90, "new")) == (
        "₹400",
        "2",
        "1",
    )
    assert '<a href="?range=90" aria-current="page">Last 90 days</a>' in last_90
    assert 'id="revenue-chart"' in last_90
    assert 'id="new-customers-chart"' in last_90
    assert 'id="dashboard-chart-data"' in last_90
    # A viewer cannot build segments, so the grid's cells are not links.
    assert 'data-testid="rfm"' in last_90
    assert "data-rfm-cell" not in last_90
    assert "No customers yet" not in last_90
    # Aggregates only: no customer's name or email on the page.
    assert "Zelda" not in last_90
    assert "Quixote" not in last_90
    assert "A@example.com" not in last_90


def test_a_marketers_rfm_cell_opens_the_builder_with_its_rules(client: Client) -> None:
    client.force_login(UserFactory(role=Role.MARKETER))
    _seed_recent()

    page = client.get(reverse("web:dashboard"), {"range": "90"}).content.decode()

    links = re.findall(r'<a href="([^"]+)"[^>]*data-rfm-cell', page)
    assert len(links) == 1  # A alone ordered in the range: one cell, the others empty
    href = html.unescape(links[0])
    assert urlparse(href).path == reverse("segments:new")
    rules = json.loads(parse_qs(urlparse(href).query)["rules"][0])
    assert customers_matching(parse_rules(rules)).count() == 1

    builder = client.get(href)

    assert builder.status_code == 200
    assert json.loads(builder.context["form"].initial["rules"]) == parse_rules(rules).to_dict()


def test_the_builder_ignores_invalid_rules_in_its_link(client: Client) -> None:
    client.force_login(UserFactory(role=Role.MARKETER))

    response = client.get(reverse("segments:new"), {"rules": '{"match": "most"}'})

    assert response.status_code == 200
    assert json.loads(response.context["form"].initial["rules"]) == {
        "match": "all",
        "conditions": [],
    }
    assert "The link's rules could not be used" in html.unescape(response.content.decode())


def test_a_bad_custom_range_falls_back_with_a_message(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))
    _seed_recent()

    page = client.get(reverse("web:dashboard"), {"range": "custom", "from": "x"}).content.decode()

    assert "Pick both dates." in page
    assert '<a href="?range=30" aria-current="page">Last 30 days</a>' in page


def test_the_dashboard_without_customers_shows_how_to_start(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))

    page = client.get(reverse("web:dashboard")).content.decode()

    assert "No customers yet" in page
    assert "seed_demo" in page
    assert "revenue-chart" not in page


@pytest.mark.parametrize(
    ("currency", "locale", "aov", "exact", "js_locale"),
    [
        ("INR", "en_IN", "₹12,34,568", "₹12,34,567.50", "en-IN"),
        ("USD", "en", "$1,234,568", "$1,234,567.50", "en"),
    ],
)
def test_the_dashboard_writes_money_for_the_shop_currency(
    client: Client, settings: Any, currency: str, locale: str, aov: str, exact: str, js_locale: str
) -> None:
    settings.MINICRM_CURRENCY, settings.MINICRM_LOCALE = currency, locale
    client.force_login(UserFactory(role=Role.VIEWER))
    CustomerFactory(external_id="A")
    _orders("A", ((timezone.now() - timedelta(days=1)).isoformat(), "1234567.50", "completed"))

    response = client.get(reverse("web:dashboard"))

    # Whole units on the card (half-up), to the cent on hover.
    # A long value takes the smaller size that keeps it to its card.
    page = response.content.decode()
    assert f'<div class="stat-value stat-value-long" title="{exact}">{aov}</div>' in page
    # The charts' script formats with Intl.NumberFormat(locale, {currency}) as the server does.
    assert response.context["chart"]["money"] == {
        "currency": currency,
        "locale": js_locale,
        "symbol": aov[0],
    }
