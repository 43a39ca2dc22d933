"""The values the builder's city and tag inputs suggest (customers.selectors), briefly cached."""

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from minicrm.customers.models import CustomerTag
from minicrm.customers.selectors import customer_city_suggestions, customer_tag_suggestions
from tests.factories import CustomerFactory

from .test_views import json_script


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tagged(db: None) -> None:
    for city, tags in [
        ("Pune", ["vip"]),
        ("Pune", ["vip", "newsletter"]),
        ("Delhi", ["wholesale"]),
        ("", ["vip"]),
        ("Mumbai", []),
        ("Pune", []),
        ("Delhi", []),
    ]:
        person = CustomerFactory(city=city)
        CustomerTag.objects.bulk_create(CustomerTag(customer=person, name=tag) for tag in tags)


def test_cities_come_most_common_first_without_blanks(tagged: None) -> None:
    assert customer_city_suggestions() == {
        "values": ["Pune", "Delhi", "Mumbai"],
        "complete": True,
    }


def test_tags_come_most_used_first_and_a_capped_list_says_it_is_incomplete(tagged: None) -> None:
    assert customer_tag_suggestions() == {
        "values": ["vip", "newsletter", "wholesale"],
        "complete": True,
    }
    assert customer_tag_suggestions(limit=2) == {"values": ["vip", "newsletter"], "complete": False}


def test_suggestions_are_cached(tagged: None, django_assert_num_queries: object) -> None:
    first = customer_city_suggestions()
    CustomerFactory(city="Chennai")
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert customer_city_suggestions() == first
    cache.clear()
    assert "Chennai" in customer_city_suggestions()["values"]


def test_the_builder_page_carries_the_suggestions(marketer_client: Client, tagged: None) -> None:
    html = marketer_client.get(reverse("segments:new")).content.decode()
    meta = json_script(html, "rule-fields")
    assert isinstance(meta, dict)
    assert meta["suggestions"] == {
        "city": {"values": ["Pune", "Delhi", "Mumbai"], "complete": True},
        "tags": {"values": ["vip", "newsletter", "wholesale"], "complete": True},
    }
