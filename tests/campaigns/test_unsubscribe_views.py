"""The unsubscribe link: no login, a confirmation page, the form POST (CSRF-checked), the RFC 8058
one-click POST (no CSRF token, idempotent), a 404 for any token we did not sign, and the
customer's page showing it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.campaigns.unsubscribe import unsubscribe_token, unsubscribe_url
from minicrm.customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def customer() -> Customer:
    return CustomerFactory(email="asha.rao@example.com")


def url_of(customer: Customer) -> str:
    return reverse("campaigns:unsubscribe", args=[unsubscribe_token(customer.pk)])


def test_the_link_in_messages_is_this_page(customer: Customer, settings: object) -> None:
    settings.MINICRM_PUBLIC_URL = "https://crm.example.com/"  # type: ignore[attr-defined]
    assert unsubscribe_url(customer.pk) == "https://crm.example.com" + url_of(customer)


def test_get_asks_without_a_login_and_changes_nothing(customer: Customer) -> None:
    response = Client().get(url_of(customer))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe?" in page
    assert "a•••@example.com" in page
    assert "asha.rao" not in page  # the address is masked: a forwarded link does not leak it
    assert "Mini CRM" in page  # who the messages came from (DEFAULT_FROM_EMAIL's name)
    assert response["Cache-Control"].startswith("max-age=0")
    assert response["Referrer-Policy"] == "same-origin"
    customer.refresh_from_db()
    assert customer.unsubscribed_at is None


def test_the_form_post_needs_its_csrf_token_and_then_unsubscribes(customer: Customer) -> None:
    browser = Client(enforce_csrf_checks=True)
    forged = browser.post(url_of(customer), {})
    assert forged.status_code == 403
    customer.refresh_from_db()
    assert customer.unsubscribed_at is None

    page = browser.get(url_of(customer))
    token = page.context["csrf_token"]
    response = browser.post(url_of(customer), {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    customer.refresh_from_db()
    assert customer.unsubscribed_at is not None


def test_the_one_click_post_needs_no_csrf_token_and_is_idempotent(customer: Customer) -> None:
    mail_client = Client(enforce_csrf_checks=True)
    response = mail_client.post(url_of(customer), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert response.content == b"You are unsubscribed."
    customer.refresh_from_db()
    first = customer.unsubscribed_at
    assert first is not None

    again = mail_client.post(url_of(customer), {"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    customer.refresh_from_db()
    assert customer.unsubscribed_at == first  # the first time is kept


def test_the_one_click_post_works_as_a_raw_form_body(customer: Customer) -> None:
    response = Client(enforce_csrf_checks=True).post(
        url_of(customer),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Customer.objects.get(pk=customer.pk).unsubscribed_at is not None


def test_another_body_without_a_token_is_refused(customer: Customer) -> None:
    response = Client(enforce_csrf_checks=True).post(
        url_of(customer), {"List-Unsubscribe": "Two-Clicks"}
    )
    assert response.status_code == 403
    assert Customer.objects.get(pk=customer.pk).unsubscribed_at is None


def test_someone_already_unsubscribed_is_told_so(customer: Customer) -> None:
    earlier = timezone.now() - timedelta(days=3)
    Customer.objects.filter(pk=customer.pk).update(unsubscribed_at=earlier)
    page = Client().get(url_of(customer)).content.decode()
    assert "You are already unsubscribed" in page
    assert "<form" not in page
    Client().post(url_of(customer), {"List-Unsubscribe": "One-Click"})
    assert Customer.objects.get(pk=customer.pk).unsubscribed_at == earlier


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token, other: token[:-1] + ("A" if token[-1] != "A" else "B"),  # damaged
        lambda token, other: f"{other}:" + token.split(":", 1)[1],  # another id, same signature
        lambda token, other: token.split(":", 1)[0],  # no signature at all
        lambda token, other: "x" * 300,
        lambda token, other: "%00%ff",
    ],
)
def test_a_forged_or_damaged_token_is_a_404_page(customer: Customer, mangle: object) -> None:
    other = CustomerFactory()
    token = mangle(unsubscribe_token(customer.pk), other.pk)  # type: ignore[operator]
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404, (method, token)
        assert "This link does not work" in response.content.decode()
    assert not Customer.objects.filter(unsubscribed_at__isnull=False).exists()


def test_a_deleted_customers_link_is_a_404(customer: Customer) -> None:
    url = url_of(customer)
    customer.delete()
    assert Client().get(url).status_code == 404


def test_the_customer_page_shows_the_unsubscribe_date(
    marketer_client: Client, customer: Customer
) -> None:
    page = reverse("customers:detail", args=[customer.pk])
    assert 'data-testid="unsubscribed"' not in marketer_client.get(page).content.decode()
    Client().post(url_of(customer), {"List-Unsubscribe": "One-Click"})
    customer.refresh_from_db()
    html = marketer_client.get(page).content.decode()
    assert 'data-testid="unsubscribed"' in html
    assert f"Unsubscribed on {customer.unsubscribed_at:%-d %b %Y}" in html
