"""The customer list's total, its active filters as removable chips, and "Save as segment"."""

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from minicrm.customers.models import Customer, CustomerTag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CITIES = ["Pune", "Mumbai", "Delhi"]
COUNTRIES = ["India", "Singapore"]
TAGS = ["vip", "newsletter", ""]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def crowd() -> list[Customer]:
    """36 customers spread over cities, countries, tags, spends and two email domains."""
    customers = []
    for index in range(36):
        customer = CustomerFactory(
            external_id=f"C-{index:03d}",
            email=f"{'shop' if index % 4 else 'user'}{index}@{'acme' if index % 3 else 'zeta'}.in",
            first_name=f"Name{index}",
            last_name="Person",
            city=CITIES[index % 3],
            country=COUNTRIES[index % 2],
            total_spend=Decimal(index * 250) + Decimal("0.50"),
            order_count=index % 5,
        )
        tag = TAGS[index % 3]
        if tag:
            CustomerTag.objects.create(customer=customer, name=tag)
        customers.append(customer)
    return customers


def _chips(response: Any) -> dict[str, dict[str, str]]:
    return {chip["key"]: chip for chip in response.context["chips"]}


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_total_is_at_the_top_of_the_results(viewer_client: Client, crowd: Any) -> None:
    page = viewer_client.get(reverse("customers:list")).content.decode()
    assert '<strong class="tabular">36</strong> customers</p>' in page

    filtered = viewer_client.get(reverse("customers:list"), {"city": "Pune"})
    assert filtered.context["total"] == 12
    assert '<strong class="tabular">12</strong> customers match</p>' in filtered.content.decode()


def test_each_chip_removes_only_its_own_filter(viewer_client: Client, crowd: Any) -> None:
    params = {
        "q": "shop",
        "city": "Pune",
        "country": "India",
        "tag": "vip",
        "spend_min": "1000",
        "spend_max": "7500.50",
        "sort": "-spend",
    }
    response = viewer_client.get(reverse("customers:list"), params)

    chips = _chips(response)
    assert list(chips) == ["q", "city", "country", "tag", "spend_min", "spend_max"]
    assert chips["spend_min"]["value"] == "₹1,000"
    assert chips["spend_max"]["value"] == "₹7,500.50"
    for key, chip in chips.items():
        kept = {name: [value] for name, value in params.items() if name != key}
        assert _params(chip["remove_url"]) == kept, key
    page = response.content.decode()
    assert page.count('data-testid="chip-remove"') == 6
    assert 'aria-label="Remove filter city: Pune"' in page


def test_a_chip_link_lists_what_the_other_filters_select(viewer_client: Client, crowd: Any) -> None:
    response = viewer_client.get(reverse("customers:list"), {"city": "Pune", "tag": "vip"})
    city_removed = viewer_client.get(_chips(response)["city"]["remove_url"])

    assert city_removed.context["total"] == CustomerTag.objects.filter(name="vip").count()
    assert list(_chips(city_removed)) == ["tag"]


def test_clear_all_drops_every_filter_and_keeps_the_sort(viewer_client: Client, crowd: Any) -> None:
    response = viewer_client.get(
        reverse("customers:list"), {"city": "Pune", "tag": "vip", "sort": "name"}
    )
    page = response.content.decode()
    assert 'data-testid="clear-all"' in page

    assert response.context["clear_url"] == reverse("customers:list") + "?sort=name"
    cleared = viewer_client.get(response.context["clear_url"])
    assert cleared.context["chips"] == []
    assert cleared.context["total"] == 36
    assert 'data-testid="clear-all"' not in cleared.content.decode()


def test_the_unfiltered_list_has_no_chips_and_no_save(marketer_client: Client, crowd: Any) -> None:
    page = marketer_client.get(reverse("customers:list")).content.decode()

    assert 'data-testid="filter-chip"' not in page
    assert "Save as segment" not in page


def _preview_count(api_client: Client, rules: dict[str, Any]) -> int:
    preview = api_client.post(
        "/api/v1/segments/preview", {"rules": rules}, content_type="application/json"
    )
    assert preview.status_code == 200, preview.content
    count: int = preview.json()["count"]
    return count


@pytest.mark.parametrize(
    "filters",
    [
        {"city": "Pune"},
        {"country": "Singapore", "tag": "newsletter"},
        {"tag": "vip", "spend_min": "2000"},
        {"spend_min": "1000.50", "spend_max": "6000"},
        {"q": "shop1@acme.in", "country": "Singapore"},
        {"q": "USER4@", "city": "Mumbai"},
        {"q": "user8@zeta"},
        {"city": "Delhi", "country": "India", "tag": "vip", "spend_max": "8000"},
        {"city": "Nowhere"},
    ],
)
def test_save_as_segment_rules_select_exactly_the_listed_customers(
    marketer_client: Client, api_client: Client, crowd: Any, filters: dict[str, str]
) -> None:
    listed = marketer_client.get(reverse("customers:list"), filters)
    query = listed.context["saved_filters_query"]
    assert 'data-testid="save-as-segment"' in listed.content.decode()
    # The segments app turns the list's filters into rules and opens the builder with them.
    saved = marketer_client.get(f"{reverse('segments:new_from_customers')}?{query}")
    assert saved.status_code == 302
    url = saved["Location"]
    rules = json.loads(_params(url)["rules"][0])

    assert _preview_count(api_client, rules) == listed.context["total"]
    # The builder opens with those rules (not an empty builder after refusing them).
    builder = marketer_client.get(url)
    assert builder.status_code == 200
    opened = json.loads(builder.context["form"].initial["rules"])
    assert len(opened["conditions"]) == len(rules["conditions"]) > 0
    assert _preview_count(api_client, opened) == listed.context["total"]


def test_a_name_search_cannot_be_saved_as_a_segment(marketer_client: Client, crowd: Any) -> None:
    response = marketer_client.get(reverse("customers:list"), {"q": "name1", "city": "Pune"})

    assert response.context["total"] > 0
    assert response.context["saved_filters_query"] == ""
    page = response.content.decode()
    assert "A name search has no segment rule" in page
    assert 'disabled aria-describedby="segment-hint"' in page


def test_viewers_are_not_offered_save_as_segment(viewer_client: Client, crowd: Any) -> None:
    page = viewer_client.get(reverse("customers:list"), {"city": "Pune"}).content.decode()

    assert 'data-testid="filter-chip"' in page
    assert "Save as segment" not in page


def test_a_name_search_sent_to_save_as_segment_returns_to_the_list_with_why(
    marketer_client: Client, crowd: Any
) -> None:
    response = marketer_client.get(
        reverse("segments:new_from_customers"), {"q": "name1", "city": "Pune"}, follow=True
    )

    assert response.redirect_chain[-1][0] == f"{reverse('customers:list')}?q=name1&city=Pune"
    assert "A name search has no segment rule" in response.content.decode()
