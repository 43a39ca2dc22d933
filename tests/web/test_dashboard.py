from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.customers.services import orders_bulk_upsert
from minicrm.web.selectors import dashboard_compute, dashboard_get
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
DASH = "\N{EN DASH}"

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)  # a Thursday


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


def test_the_numbers_are_exact_on_a_small_base(base: None) -> None:
    data = dashboard_compute(now=NOW)

    assert data.customers == 6
    assert data.active_customers == 2  # A and B ordered since 20 Dec 2024
    assert data.revenue_this_month == Decimal("1500.00")  # B's cancelled order does not count
    # 1 Feb to 20 Feb 12:00, the same stretch of last month: A's 300 and B's 200.
    assert data.revenue_last_month == Decimal("500.00")
    assert (data.last_month_start, data.last_month_end) == (date(2025, 2, 1), date(2025, 2, 20))
    assert data.revenue_change == 2.0
    assert data.average_order_value == Decimal("364.29")  # 2,550 over 7 completed orders
    assert (data.buyers, data.repeat_buyers, data.repeat_rate) == (5, 1, 0.2)
    assert data.recency == [
        (f"0{DASH}30 days", 1),
        (f"31{DASH}90 days", 1),
        (f"91{DASH}180 days", 1),
        (f"181{DASH}365 days", 1),
        ("365+ days", 1),
        ("Never ordered", 1),
    ]


def test_the_numbers_take_four_queries(base: None, django_assert_num_queries: Any) -> None:
    # Customer counts, the two customer sums, and every revenue range in one UNION ALL.
    with django_assert_num_queries(4):
        dashboard_compute(now=NOW)


def test_revenue_by_week_covers_26_weeks_from_monday(base: None) -> None:
    weeks = dashboard_compute(now=NOW).weekly_revenue

    assert len(weeks) == 26
    assert weeks[0].week_start == date(2024, 9, 23)
    assert weeks[-1].week_start == date(2025, 3, 17)
    assert all(week.week_start.weekday() == 0 for week in weeks)
    revenue = {week.week_start: week.revenue for week in weeks if week.revenue}
    assert revenue == {
        date(2024, 10, 28): Decimal("50.00"),
        date(2025, 2, 3): Decimal("200.00"),
        date(2025, 2, 10): Decimal("300.00"),
        date(2025, 3, 3): Decimal("500.00"),
        date(2025, 3, 17): Decimal("1000.00"),
    }


@pytest.mark.parametrize(
    ("last_order", "bucket"),
    [
        ("2025-03-20T11:59:00+00:00", f"0{DASH}30 days"),
        ("2025-02-18T00:00:00+00:00", f"0{DASH}30 days"),  # 30 days before today
        ("2025-02-17T23:59:00+00:00", f"31{DASH}90 days"),  # 31 days
        ("2024-12-20T00:00:00+00:00", f"31{DASH}90 days"),  # 90 days
        ("2024-12-19T23:59:00+00:00", f"91{DASH}180 days"),  # 91 days
        ("2024-03-20T00:00:00+00:00", f"181{DASH}365 days"),  # 365 days
        ("2024-03-19T23:59:00+00:00", "365+ days"),  # 366 days
    ],
)
def test_recency_buckets_include_both_ends(last_order: str, bucket: str) -> None:
    CustomerFactory(external_id="X")
    _orders("X", (last_order, "10.00", "completed"))

    recency = dict(dashboard_compute(now=NOW).recency)

    assert recency[bucket] == 1
    assert sum(recency.values()) == 1


def test_no_orders_last_month_means_no_change() -> None:
    CustomerFactory(external_id="A")
    _orders("A", ("2025-03-02T09:00:00+00:00", "10.00", "completed"))

    data = dashboard_compute(now=NOW)

    assert data.revenue_change is None
    assert data.average_order_value == Decimal("10.00")


def test_a_month_longer_than_the_last_compares_with_all_of_it() -> None:
    CustomerFactory(external_id="A")
    _orders("A", ("2025-02-28T23:00:00+00:00", "10.00", "completed"))

    data = dashboard_compute(now=datetime(2025, 3, 31, 12, 0, tzinfo=UTC))

    assert data.revenue_last_month == Decimal("10.00")
    assert data.last_month_end == date(2025, 2, 28)


def test_the_numbers_are_cached_for_a_minute_once_there_are_customers() -> None:
    assert dashboard_get().customers == 0
    CustomerFactory()
    assert dashboard_get().customers == 1  # an empty base is not cached

    CustomerFactory()

    assert dashboard_get().customers == 1
    cache.clear()
    assert dashboard_get().customers == 2


def test_the_dashboard_page_shows_the_cards_and_charts(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))
    now = timezone.now()
    for key in "AB":
        CustomerFactory(external_id=key)
    _orders(
        "A",
        ((now - timedelta(days=1)).isoformat(), "100.00", "completed"),
        ((now - timedelta(days=40)).isoformat(), "300.00", "completed"),
    )

    response = client.get(reverse("web:dashboard"))

    page = response.content.decode()
    assert response.status_code == 200
    stats: dict[str, Any] = {
        "customers": "2",
        "active": "1",
        "aov": "₹200",
        "repeat": "100%",
    }
    for name, value in stats.items():
        assert f'data-stat="{name}"' in page
        assert f'<div class="stat-value">{value}</div>' in page or (
            f'<div class="stat-value" title="₹200.00">{value}</div>' in page
        ), name
    assert 'id="revenue-chart"' in page
    assert 'role="img" aria-label="Revenue by week for the last 26 weeks:' in page
    assert 'id="recency-chart"' in page
    assert "Show as a table" in page
    assert 'id="dashboard-chart-data"' in page
    assert "No customers yet" not in page


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
