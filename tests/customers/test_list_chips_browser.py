"""The customers pages of issue 15 in Chromium, at 1280 and 390 px, light and dark: the total and
the filter chips, Save as segment, the order history's pages and the activity timeline."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from minicrm.accounts.models import Role
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.customers.models import Customer
from minicrm.customers.services import orders_bulk_upsert
from tests.factories import CustomerFactory, UserFactory
from tests.web.axe import axe_violations
from tests.web.browser import screenshot, seed_base, sign_in
from tests.web.test_phone_width_browser import OVERFLOWING

SIZES = [("desktop", 1280, 800), ("phone", 390, 844)]
THEMES = ["light", "dark"]


def _loyal_customer() -> Customer:
    """A customer with 120 orders, campaign messages and an unsubscribe."""
    now = timezone.now()
    customer = CustomerFactory(
        external_id="LOYAL",
        first_name="Meera",
        last_name="Krishnamurthy-Venkataraman",
        email="meera.krishnamurthy.venkataraman@example-long-domain.com",
        city="Pune",
        unsubscribed_at=now - timedelta(hours=1),
    )
    result = orders_bulk_upsert(
        rows=[
            {
                "external_id": f"LOYAL-ORDER-{index:04d}",
                "customer_external_id": "LOYAL",
                "amount": str(Decimal("1499.00") + index),
                "ordered_at": (now - timedelta(days=index * 3, hours=2)).isoformat(),
                "status": "refunded" if index % 9 == 4 else "completed",
            }
            for index in range(120)
        ]
    )
    assert not result.errors
    for index, status in enumerate(["delivered", "failed", "held_out"]):
        campaign = Campaign.objects.create(
            name=f"Festive season offer number {index + 1}", template="Hi", subject="Offer"
        )
        Delivery.objects.create(
            campaign=campaign,
            customer=customer,
            status=status,
            subject="Twenty percent off everything this weekend only",
            sent_at=None if status == "held_out" else now - timedelta(days=index * 4 + 2),
            created_at=now - timedelta(days=index * 4 + 2),
        )
    return customer


def _no_overflow(page: Page, width: int) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, page.evaluate(OVERFLOWING)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_customer_pages_at_both_widths_in_both_themes(
    live_server: object, browser: Browser
) -> None:
    cache.clear()
    seed_base(60)
    loyal = _loyal_customer()
    marketer = UserFactory(role=Role.MARKETER)
    url = live_server.url  # type: ignore[attr-defined]
    everyone = Customer.objects.count()
    pune_vip_1000 = Customer.objects.filter(
        city="Pune", tag_rows__name="vip", total_spend__gte=1000
    ).count()
    pune = Customer.objects.filter(city="Pune").count()

    for size, width, height in SIZES:
        for theme in THEMES:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_init_script(f"localStorage.setItem('minicrm-theme', '{theme}')")
            page = context.new_page()
            sign_in(page, url, marketer)
            name = f"customers-{size}-{theme}"

            page.goto(f"{url}/customers/?city=Pune&tag=vip&spend_min=1000")
            chips = page.get_by_test_id("filter-chip")
            expect(chips).to_have_count(3)
            expect(page.get_by_test_id("customer-total")).to_contain_text(
                f"{pune_vip_1000} customer"
            )
            _no_overflow(page, width)
            screenshot(page, f"{name}-chips", full_page=False)
            assert axe_violations(page) == []

            # Removing one chip keeps the others; Clear all drops them all.
            page.get_by_role("link", name="Remove filter spend from: ₹1,000").click()
            expect(page).to_have_url(re.compile(r"/customers/\?city=Pune&tag=vip$"))
            expect(chips).to_have_count(2)
            page.get_by_role("link", name="Remove filter tag: vip").click()
            expect(page).to_have_url(re.compile(r"/customers/\?city=Pune$"))
            expect(page.get_by_test_id("customer-total")).to_contain_text(f"{pune} customers")
            expect(page.get_by_label("Tag")).to_have_value("")
            page.get_by_role("link", name="Clear all").click()
            expect(chips).to_have_count(0)
            expect(page.get_by_test_id("customer-total")).to_contain_text(f"{everyone} customers")

            page.goto(f"{url}/customers/{loyal.pk}/")
            timeline = page.get_by_test_id("timeline-event")
            expect(timeline).to_have_count(20)
            expect(timeline.first).to_contain_text("Unsubscribed from every campaign")
            expect(page.get_by_test_id("orders-range")).to_have_text("1\N{EN DASH}50 of 120")
            screenshot(page, f"{name}-detail", full_page=False)
            _no_overflow(page, width)
            page.get_by_test_id("timeline-more").click()
            expect(timeline).to_have_count(40)
            assert axe_violations(page) == []
            timeline.nth(14).scroll_into_view_if_needed()
            screenshot(page, f"{name}-timeline", full_page=False)
            page.get_by_role("link", name="Older").click()
            expect(page.get_by_test_id("orders-range")).to_have_text("51\N{EN DASH}100 of 120")
            page.get_by_role("link", name="Older").click()
            expect(page.get_by_test_id("orders-range")).to_have_text("101\N{EN DASH}120 of 120")
            expect(page).to_have_url(re.compile(r"\?orders_page=3$"))
            expect(page.get_by_test_id("order-row").last).to_contain_text("LOYAL-ORDER-0119")
            page.get_by_test_id("orders-range").scroll_into_view_if_needed()
            screenshot(page, f"{name}-orders", full_page=False)
            _no_overflow(page, width)
            context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_save_as_segment_opens_the_builder_with_the_filters(
    live_server: object, page: Page
) -> None:
    cache.clear()
    seed_base(40)
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, UserFactory(role=Role.MARKETER))
    expected = Customer.objects.filter(country="India", total_spend__gte=2000).count()

    page.goto(f"{url}/customers/?country=India&spend_min=2000")
    page.get_by_role("link", name="Save as segment").click()

    expect(page).to_have_url(re.compile(r"/segments/new/\?rules="))
    expect(page.get_by_test_id("audience-count")).to_have_text(f"{expected:,}")
    screenshot(page, "customers-save-as-segment-builder", full_page=False)
