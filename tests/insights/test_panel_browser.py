"""The insight panel on a real segment page in Chromium: generate, read, charts, dark mode,
failure and queued states. Screenshots go to artifacts/screenshots/insights-*.png."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customer_stats_recompute
from minicrm.insights.models import Insight
from minicrm.insights.services import insight_generate, insights_recover
from minicrm.segments.models import Segment
from tests.factories import CustomerFactory

from .conftest import segment_create

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CITIES = ["Mumbai", "Delhi", "Pune", "Bengaluru", "Chennai"]


@pytest.fixture
def shop(db: None) -> Segment:
    """40 customers with orders spread over the last two years (relative to now)."""
    now = timezone.now()
    customers: list[Customer] = []
    for index in range(40):
        customer = CustomerFactory(city=CITIES[index % 5] if index % 4 else "Mumbai")
        customers.append(customer)
        orders = index % 7
        for number in range(orders):
            Order.objects.create(
                external_id=f"o-{index}-{number}",
                customer=customer,
                amount=Decimal(400 + 350 * (index % 9) + 90 * number),
                ordered_at=now - timedelta(days=(index * 17 + number * 41) % 700),
            )
    customer_stats_recompute(customer_ids=[customer.pk for customer in customers])
    return segment_create(
        "Big spenders",
        {
            "match": "all",
            "conditions": [{"field": "total_spend", "operator": "gte", "value": 3000}],
        },
    )


def open_segment(page: Page, live_server: Any, user: User, segment: Segment) -> str:
    client = Client()
    client.force_login(user)
    base = str(live_server.url)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
    )
    page.goto(f"{base}/segments/{segment.pk}/")
    # What the integrator wires on the segment page: load the panel into #segment-insights.
    page.evaluate(
        """url => {
            const box = document.getElementById("segment-insights");
            box.setAttribute("hx-get", url);
            box.setAttribute("hx-trigger", "load");
            htmx.process(box);
        }""",
        f"/segments/{segment.pk}/insights/panel/",
    )
    return base


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Tall enough that the panel needs no scrolling, so the sticky top bar never covers it.
    page.set_viewport_size({"width": 1280, "height": 2000})
    page.get_by_test_id("insight-panel").screenshot(path=SCREENSHOTS / name, animations="disabled")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_generate_read_and_switch_to_dark(
    live_server: Any, page: Page, marketer: User, shop: Segment, settings: Any
) -> None:
    settings.AI_PROVIDER = "offline"
    open_segment(page, live_server, marketer, shop)
    panel = page.get_by_test_id("insight-panel")
    expect(panel).to_contain_text("No insights yet")
    shot(page, "insights-empty.png")

    panel.get_by_role("button", name="Generate insights").click()

    expect(page.get_by_test_id("insight-headline")).to_be_visible()
    expect(panel).to_have_attribute("data-state", "succeeded")
    # Three charts drawn by Chart.js, which the panel loaded itself.
    expect(panel.locator("canvas")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.insight-chart canvas')]"
        ".every(c => window.Chart && Chart.getChart(c))"
    )
    insight = Insight.objects.get()
    assert insight.content is not None
    expect(page.get_by_test_id("insight-message")).to_have_text(
        insight.content["suggested_message"]
    )
    shot(page, "insights-succeeded.png")
    page.screenshot(path=SCREENSHOTS / "insights-segment-page.png", full_page=True)

    # Message ideas for a campaign: objective in, three variants out, in place.
    panel.get_by_text("More message ideas for a campaign").click()
    panel.get_by_label("What should the message achieve?").fill("Win back lapsed buyers, 10% off")
    panel.get_by_role("button", name="Suggest messages").click()
    suggestions = panel.get_by_role("list", name="Suggested messages").locator("li")
    expect(suggestions).to_have_count(3)
    expect(suggestions.first).to_contain_text("with 10% off")
    shot(page, "insights-suggestions.png")

    page.set_viewport_size({"width": 390, "height": 2400})
    page.get_by_test_id("insight-panel").screenshot(
        path=SCREENSHOTS / "insights-phone.png", animations="disabled"
    )
    page.set_viewport_size({"width": 1280, "height": 2000})
    page.locator("[data-theme-toggle]").click()
    page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    shot(page, "insights-succeeded-dark.png")
    # The charts follow the theme: their text colour is the dark token now.
    tick_colour = page.evaluate(
        "() => Chart.getChart(document.querySelector('.insight-chart canvas'))"
        ".options.scales.y.ticks.color"
    )
    assert tick_colour == page.evaluate(
        "() => getComputedStyle(document.documentElement)"
        ".getPropertyValue('--muted-foreground').trim()"
    )

    # The tables hold the same figures for those who cannot see the charts.
    panel.get_by_text("Show as a table").first.click()
    expect(panel.locator("details.insight-table[open] table tbody tr")).to_have_count(6)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_queued_insight_updates_by_itself(
    live_server: Any, page: Page, marketer: User, shop: Segment, settings: Any
) -> None:
    settings.AI_PROVIDER = "offline"
    insight = Insight.objects.create(segment=shop, rules=shop.rules, provider="offline")
    open_segment(page, live_server, marketer, shop)
    panel = page.get_by_test_id("insight-panel")
    expect(panel).to_contain_text("Queued — waiting for the worker…")
    shot(page, "insights-queued.png")

    # The worker picks it up; the panel polls every 2 s and shows the result without a reload.
    insight_generate(insight_id=insight.pk, may_retry=False)

    expect(page.get_by_test_id("insight-headline")).to_be_visible(timeout=6000)
    expect(panel.locator("canvas")).to_have_count(3)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_failed_and_stale_states(
    live_server: Any, page: Page, marketer: User, shop: Segment
) -> None:
    Insight.objects.create(
        segment=shop,
        rules={"match": "all", "conditions": []},
        status=Insight.Status.FAILED,
        provider="gemini",
        error="Gemini is unavailable (503 UNAVAILABLE): The model is overloaded."
        " (gave up after 4 attempts)",
        attempts=4,
        finished_at=timezone.now() - timedelta(minutes=5),
    )
    open_segment(page, live_server, marketer, shop)
    panel = page.get_by_test_id("insight-panel")

    expect(page.get_by_test_id("insight-error")).to_contain_text("The model is overloaded.")
    expect(page.get_by_test_id("insight-stale")).to_be_visible()
    expect(panel.get_by_role("button", name="Try again")).to_be_visible()
    shot(page, "insights-failed.png")


def test_a_running_insight_whose_worker_died_turns_into_a_failure(
    live_server: Any, page: Page, marketer: User, shop: Segment, settings: Any
) -> None:
    settings.INSIGHT_MAX_ATTEMPTS = 1
    now = timezone.now()
    Insight.objects.create(
        segment=shop,
        rules=shop.rules,
        status=Insight.Status.RUNNING,
        provider="offline",
        attempts=1,
        started_at=now - timedelta(minutes=1),
        lease_token="a" * 32,
        lease_expires_at=now - timedelta(seconds=1),
    )
    open_segment(page, live_server, marketer, shop)
    panel = page.get_by_test_id("insight-panel")
    expect(panel).to_have_attribute("data-state", "running")

    # A worker's recovery sweep finds the lease expired and, at the attempt limit, fails it:
    # the panel's next poll shows the failure.
    assert insights_recover() == 1
    expect(page.get_by_test_id("insight-error")).to_contain_text(
        "The worker stopped while generating these insights", timeout=10_000
    )
    expect(panel).to_have_attribute("data-state", "failed")
    expect(panel.get_by_role("button", name="Try again")).to_be_visible()
    shot(page, "insights-stalled.png")
