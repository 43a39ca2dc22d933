"""Helpers for browser tests: sign a user in without the form, seed a small realistic base."""

import random
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page

from minicrm.accounts.models import User
from minicrm.customers.models import Customer, CustomerTag
from minicrm.customers.services import orders_bulk_upsert
from tests.factories import CustomerFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def sign_in(page: Page, base_url: str, user: User) -> None:
    """Give the browser a session cookie for `user` (the sign-in form has its own tests)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def seed_base(customers: int = 40, *, seed: int = 7) -> list[Customer]:
    """Customers with a spread of cities, tags and orders over the last year and a half."""
    rng = random.Random(seed)
    cities = [
        ("Pune", "India"),
        ("Mumbai", "India"),
        ("Delhi", "India"),
        ("Singapore", "Singapore"),
    ]
    now = timezone.now()
    people = []
    for index in range(customers):
        city, country = rng.choice(cities)
        people.append(
            CustomerFactory(
                external_id=f"C-{index:04d}",
                city=city,
                country=country,
                marketing_consent=rng.random() > 0.2,
            )
        )
    tags = [
        CustomerTag(customer=person, name=tag)
        for person in people
        for tag in rng.sample(["vip", "newsletter", "wholesale", "returning"], rng.randint(0, 2))
    ]
    CustomerTag.objects.bulk_create(tags)
    rows = []
    for person in people[: customers * 9 // 10]:
        for order in range(rng.choice([1, 1, 2, 3, 5, 8])):
            days = rng.choice([rng.randint(0, 60), rng.randint(0, 540)])
            rows.append(
                {
                    "external_id": f"{person.external_id}-{order}",
                    "customer_external_id": person.external_id,
                    "amount": f"{rng.randint(300, 9000)}.{rng.randint(0, 99):02d}",
                    "ordered_at": (
                        now - timedelta(days=days, hours=rng.randint(0, 23))
                    ).isoformat(),
                    "status": rng.choice(["completed"] * 8 + ["cancelled", "refunded"]),
                }
            )
    result = orders_bulk_upsert(rows=rows)
    assert not result.errors, result.errors[:3]
    return people
