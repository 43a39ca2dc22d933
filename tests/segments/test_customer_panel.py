"""The customer page's "Segments" panel, composed by the segments app and loaded with htmx."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import User
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

CUSTOMERS_APP = Path(__file__).resolve().parents[2] / "minicrm" / "customers"


def city_is(city: str) -> dict[str, object]:
    return {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": city}]}


def test_the_panel_lists_the_segments_the_customer_is_in(
    viewer_client: Client, marketer: User
) -> None:
    asha = CustomerFactory(city="Pune")
    pune = segment_create(name="Pune", rules=parse_rules(city_is("pune")), created_by=marketer)
    delhi = segment_create(name="Delhi", rules=parse_rules(city_is("Delhi")), created_by=marketer)
    not_delhi = segment_create(
        name="Not Delhi",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "ne", "value": "Delhi"}],
            }
        ),
        created_by=marketer,
    )

    page = viewer_client.get(reverse("customers:detail", args=[asha.pk])).content.decode()
    panel_url = reverse("segments:for_customer", args=[asha.pk])
    assert f'hx-get="{panel_url}"' in page
    panel = viewer_client.get(panel_url).content.decode()

    assert reverse("segments:detail", args=[pune.pk]) in panel
    assert reverse("segments:detail", args=[not_delhi.pk]) in panel
    assert reverse("segments:detail", args=[delhi.pk]) not in panel
    assert "Delhi</a>" not in panel.replace("Not Delhi</a>", "")


@pytest.mark.django_db
def test_the_panel_of_an_unknown_customer_is_404_and_needs_a_login(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("segments:for_customer", args=[999_999])).status_code == 404
    assert Client().get(reverse("segments:for_customer", args=[1])).status_code == 302


def test_the_customers_app_imports_nothing_of_segments() -> None:
    # Data must not know who segments it: the layering the panel's move restored.
    naming = [path.name for path in CUSTOMERS_APP.glob("*.py") if "segments" in path.read_text()]
    assert naming == []
