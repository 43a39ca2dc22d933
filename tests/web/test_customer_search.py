import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_matches_are_links_to_the_customer(viewer_client: Client) -> None:
    asha = CustomerFactory(first_name="Asha", last_name="Rao", email="asha@example.com")
    CustomerFactory(first_name="Ben", last_name="Ng", email="ben@example.com")

    response = viewer_client.get(reverse("web:customer_search"), {"q": "ash"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<a ") == 1
    assert f'href="{reverse("customers:detail", args=[asha.pk])}"' in page
    assert "Asha Rao" in page
    assert "asha@example.com" in page


def test_at_most_eight_customers_are_listed(viewer_client: Client) -> None:
    CustomerFactory.create_batch(10, first_name="Priya")

    page = viewer_client.get(reverse("web:customer_search"), {"q": "priya"}).content.decode()

    assert page.count("<a ") == 8


def test_no_match_says_so_and_an_empty_query_says_nothing(viewer_client: Client) -> None:
    CustomerFactory(first_name="Asha")

    no_match = viewer_client.get(reverse("web:customer_search"), {"q": "<zed>"}).content.decode()
    empty = viewer_client.get(reverse("web:customer_search"), {"q": "  "}).content.decode()

    assert "No customer matches “&lt;zed&gt;”." in no_match
    assert empty.strip() == ""


def test_a_customer_without_a_name_shows_their_email(viewer_client: Client) -> None:
    CustomerFactory(first_name="", last_name="", email="solo@example.com")

    page = viewer_client.get(reverse("web:customer_search"), {"q": "solo@"}).content.decode()

    assert "<strong>solo@example.com</strong>" in page


def test_anonymous_searches_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("web:customer_search"), {"q": "a"})

    assert response.status_code == 302
