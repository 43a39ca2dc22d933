"""The customer pages in a real browser: search in place, sort, open a customer, screenshots."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from minicrm.accounts.models import Role
from minicrm.customers.models import Customer
from tests.factories import CustomerFactory, UserFactory
from tests.web.browser import screenshot, seed_base, sign_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_search_sort_and_open_a_customer(live_server: object, page: Page) -> None:
    cache.clear()
    seed_base(60)
    CustomerFactory(first_name="Zubin", last_name="Mehta", email="zubin@example.com", city="Pune")
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, UserFactory(role=Role.VIEWER))

    page.goto(f"{url}/customers/")
    rows = page.locator(".results-body tr")
    expect(rows).to_have_count(50)
    expect(page.get_by_test_id("page-range")).to_have_text("1\N{EN DASH}50 of 61")
    screenshot(page, "customers-list", full_page=False)

    # While a request is under way (htmx marks the results), skeleton rows stand in for the rows.
    skeleton = page.locator(".skeleton-body tr").first
    expect(skeleton).to_be_hidden()
    results = page.locator("#customer-results")
    results.evaluate("element => element.classList.add('htmx-request')")
    expect(skeleton).to_be_visible()
    expect(rows.first).to_be_hidden()
    screenshot(page, "customers-list-loading", full_page=False)
    results.evaluate("element => element.classList.remove('htmx-request')")
    expect(rows.first).to_be_visible()

    page.get_by_label("Name or email").fill("zub")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/customers/\?q=zub$"))
    expect(rows.first).to_contain_text("Zubin Mehta")

    page.get_by_label("Name or email").fill("")
    page.get_by_label("Country").select_option("Singapore")
    expect(page).to_have_url(re.compile(r"country=Singapore"))
    singapore = Customer.objects.filter(country="Singapore").count()
    expect(rows).to_have_count(singapore)

    page.get_by_role("link", name="Total spend").click()
    expect(page).to_have_url(re.compile(r"sort=-spend"))
    top = Customer.objects.filter(country="Singapore").order_by("-total_spend", "-id").first()
    assert top is not None
    expect(rows.first).to_contain_text(top.full_name)
    screenshot(page, "customers-list-filtered", full_page=False)

    rows.first.locator("td").nth(2).click()  # anywhere on the row, not only the name
    expect(page.get_by_role("heading", name=top.full_name)).to_be_visible()
    expect(page.get_by_role("heading", name="Order history")).to_be_visible()
    screenshot(page, "customer-detail")

    page.get_by_role("button", name="Switch between light and dark").click()
    page.wait_for_timeout(300)  # let the colour transitions finish
    screenshot(page, "customer-detail-dark")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_top_bar_search_opens_a_customer(live_server: object, page: Page) -> None:
    customer = CustomerFactory(first_name="Asha", last_name="Rao", email="asha@example.com")
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, UserFactory(role=Role.VIEWER))
    page.goto(f"{url}/")

    page.get_by_role("searchbox", name="Search customers").fill("asha")
    page.locator("#global-search-results").get_by_role("link", name=re.compile("Asha Rao")).click()

    expect(page).to_have_url(f"{url}/customers/{customer.pk}/")
    expect(page.get_by_role("heading", name="Asha Rao")).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_empty_list_shows_how_to_start(live_server: object, page: Page) -> None:
    cache.clear()
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, UserFactory(role=Role.VIEWER))

    page.goto(f"{url}/customers/")

    expect(page.get_by_role("heading", name="No customers yet")).to_be_visible()
    screenshot(page, "customers-empty")
