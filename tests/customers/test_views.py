from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import User
from minicrm.customers import views
from minicrm.customers.models import Customer, CustomerTag, Order
from minicrm.customers.services import orders_bulk_upsert
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import segments_for_customer
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
DASH = "\N{EN DASH}"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Counts and filter choices are cached for a minute; each test starts from its own data.
    cache.clear()


def _customer(**fields: Any) -> Customer:
    tags = fields.pop("tags", [])
    customer = CustomerFactory(**fields)
    CustomerTag.objects.bulk_create([CustomerTag(customer=customer, name=tag) for tag in tags])
    return customer


def _names(response: Any) -> list[str]:
    return [customer.full_name for customer in response.context["customers"]]


@pytest.fixture
def shoppers() -> dict[str, Customer]:
    now = timezone.now()
    return {
        "asha": _customer(
            first_name="Asha",
            last_name="Rao",
            email="asha@example.com",
            city="Pune",
            country="India",
            total_spend=Decimal("5200.00"),
            order_count=4,
            last_order_at=now - timedelta(days=12),
            tags=["vip"],
        ),
        "ben": _customer(
            first_name="Ben",
            last_name="Ng",
            email="ben@example.com",
            city="Singapore",
            country="Singapore",
            total_spend=Decimal("800.00"),
            order_count=1,
            last_order_at=now - timedelta(days=200),
        ),
        "chitra": _customer(
            first_name="Chitra",
            last_name="Iyer",
            email="chitra@example.com",
            city="Pune",
            country="India",
            total_spend=Decimal("0"),
            order_count=0,
            last_order_at=None,
            tags=["newsletter"],
        ),
    }


def test_the_list_shows_each_customer_with_their_numbers(
    viewer_client: Client, shoppers: dict[str, Customer]
) -> None:
    response = viewer_client.get(reverse("customers:list"))

    assert response.status_code == 200
    page = response.content.decode()
    # Most recent order first; those who never ordered last.
    assert _names(response) == ["Asha Rao", "Ben Ng", "Chitra Iyer"]
    assert reverse("customers:detail", args=[shoppers["asha"].pk]) in page
    assert "asha@example.com" in page
    assert "₹5,200" in page
    assert "12\xa0days ago" in page
    last_order = timezone.localtime(shoppers["asha"].last_order_at)
    assert f'title="{last_order:%-d %b %Y, %H:%M}"' in page
    assert "Never" in page
    assert f"1{DASH}3 of 3" in page


def test_search_filters_by_name_or_email(
    viewer_client: Client, shoppers: dict[str, Customer]
) -> None:
    assert _names(viewer_client.get(reverse("customers:list"), {"q": "chi"})) == ["Chitra Iyer"]
    assert _names(viewer_client.get(reverse("customers:list"), {"q": "ben@"})) == ["Ben Ng"]
    assert _names(viewer_client.get(reverse("customers:list"), {"q": "zed"})) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"city": "Pune"}, ["Asha Rao", "Chitra Iyer"]),
        ({"country": "Singapore"}, ["Ben Ng"]),
        ({"tag": "VIP"}, ["Asha Rao"]),
        ({"spend_min": "500", "spend_max": "1000"}, ["Ben Ng"]),
        ({"spend_min": "1000"}, ["Asha Rao"]),
        ({"city": "Pune", "tag": "newsletter"}, ["Chitra Iyer"]),
    ],
)
def test_filters_narrow_the_list(
    viewer_client: Client,
    shoppers: dict[str, Customer],
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert _names(viewer_client.get(reverse("customers:list"), params)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("spend", ["Chitra Iyer", "Ben Ng", "Asha Rao"]),
        ("-spend", ["Asha Rao", "Ben Ng", "Chitra Iyer"]),
        ("name", ["Chitra Iyer", "Ben Ng", "Asha Rao"]),
        ("-orders", ["Asha Rao", "Ben Ng", "Chitra Iyer"]),
        ("last_order", ["Ben Ng", "Asha Rao", "Chitra Iyer"]),
        ("no-such-column", ["Asha Rao", "Ben Ng", "Chitra Iyer"]),
    ],
)
def test_columns_sort_the_list(
    viewer_client: Client, shoppers: dict[str, Customer], sort: str, expected: list[str]
) -> None:
    assert _names(viewer_client.get(reverse("customers:list"), {"sort": sort})) == expected


def test_sort_headers_toggle_and_keep_the_filters(
    viewer_client: Client, shoppers: dict[str, Customer]
) -> None:
    response = viewer_client.get(reverse("customers:list"), {"city": "Pune", "sort": "-spend"})

    headers = {header["column"].key: header for header in response.context["columns"]}
    assert headers["spend"]["aria_sort"] == "descending"
    assert headers["spend"]["url"] == "/customers/?city=Pune&sort=spend"
    assert headers["name"]["url"] == "/customers/?city=Pune&sort=name"
    assert headers["orders"]["url"] == "/customers/?city=Pune&sort=-orders"


def test_an_htmx_request_gets_the_results_fragment_only(
    viewer_client: Client, shoppers: dict[str, Customer]
) -> None:
    response = viewer_client.get(reverse("customers:list"), {"q": "asha"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert page.startswith('<div id="customer-results"')
    assert "<html" not in page
    assert "Asha" in page
    assert "HX-Request" in response["Vary"]


def test_htmx_restoring_history_gets_the_whole_page(viewer_client: Client) -> None:
    response = viewer_client.get(
        reverse("customers:list"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )

    assert "<html" in response.content.decode()


def test_pages_of_fifty_with_next_and_previous(viewer_client: Client) -> None:
    CustomerFactory.create_batch(55)

    first = viewer_client.get(reverse("customers:list"))
    second = viewer_client.get(reverse("customers:list"), {"page": "2"})

    assert len(first.context["customers"]) == 50
    assert f"1{DASH}50 of 55" in first.content.decode()
    assert first.context["next_url"] == "/customers/?page=2"
    assert first.context["previous_url"] == ""
    assert len(second.context["customers"]) == 5
    assert f"51{DASH}55 of 55" in second.content.decode()
    assert second.context["previous_url"] == "/customers/"
    assert second.context["next_url"] == ""
    ids = [c.pk for c in first.context["customers"]] + [c.pk for c in second.context["customers"]]
    assert len(set(ids)) == 55


def test_a_filtered_count_stops_at_the_cap(
    viewer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "COUNT_CAP", 60)
    monkeypatch.setattr(views, "PAGE_SIZE", 20)
    CustomerFactory.create_batch(70, city="Goa")

    response = viewer_client.get(reverse("customers:list"), {"city": "Goa"})

    assert f"1{DASH}20 of 60+" in response.content.decode()


def test_the_list_costs_a_fixed_number_of_queries(
    viewer_client: Client, django_assert_max_num_queries: Any
) -> None:
    for _ in range(60):
        _customer(tags=["vip", "newsletter"])
    viewer_client.get(reverse("customers:list"))  # fills the caches of counts and choices

    # session + user, the page of rows, their tags, the capped count.
    with django_assert_max_num_queries(5):
        viewer_client.get(reverse("customers:list"), {"tag": "vip"})


def test_a_bad_filter_value_is_reported_and_the_rest_still_apply(
    viewer_client: Client, shoppers: dict[str, Customer]
) -> None:
    response = viewer_client.get(reverse("customers:list"), {"spend_min": "lots", "city": "Pune"})

    assert response.status_code == 200
    assert "Enter a number." in response.content.decode()
    assert _names(response) == ["Asha Rao", "Chitra Iyer"]


def test_empty_states_for_no_customers_and_no_matches(viewer_client: Client) -> None:
    assert "No customers yet" in viewer_client.get(reverse("customers:list")).content.decode()
    CustomerFactory()

    page = viewer_client.get(reverse("customers:list"), {"q": "nobody"}).content.decode()

    assert "No customers match" in page
    assert "Clear filters" in page


def test_the_detail_page_tells_the_whole_story(viewer_client: Client) -> None:
    customer = _customer(
        first_name="Asha",
        last_name="Rao",
        email="asha@example.com",
        phone="+91 98765 43210",
        city="Pune",
        country="India",
        marketing_consent=True,
        tags=["vip", "newsletter"],
        signed_up_at=datetime(2023, 4, 5, tzinfo=UTC),
        attributes={"plan": "gold"},
    )
    orders_bulk_upsert(
        rows=[
            {
                "external_id": "O-1",
                "customer_external_id": customer.external_id,
                "amount": "1000.00",
                "ordered_at": "2025-01-10T10:00:00+00:00",
            },
            {
                "external_id": "O-2",
                "customer_external_id": customer.external_id,
                "amount": "500.00",
                "ordered_at": "2025-02-10T10:00:00+00:00",
            },
            {
                "external_id": "O-3",
                "customer_external_id": customer.external_id,
                "amount": "250.00",
                "ordered_at": "2025-03-10T10:00:00+00:00",
                "status": "refunded",
            },
        ]
    )

    response = viewer_client.get(reverse("customers:detail", args=[customer.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for text in [
        "Asha Rao",
        "asha@example.com",
        "+91 98765 43210",
        "Pune, India",
        "vip",
        "newsletter",
        "Marketing consent",
        "₹1,500",
        "₹750.00",
        "Apr 2023",
        "gold",
        "Refunded",
        "Completed",
        "O-3",
        "10 Feb 2025",
    ]:
        assert text in page, text
    assert [order.external_id for order in response.context["orders"]] == ["O-3", "O-2", "O-1"]
    panel = viewer_client.get(
        reverse("segments:for_customer", args=[response.context["customer"].pk])
    )
    assert "Not in any saved segment." in panel.content.decode()


def test_the_detail_page_shows_a_missing_consent(viewer_client: Client) -> None:
    customer = _customer(marketing_consent=False)

    page = viewer_client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert "No marketing consent" in page
    assert "No orders yet" in page


def test_the_order_history_pages_through_every_order(viewer_client: Client) -> None:
    customer = _customer()
    other = _customer()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    Order.objects.bulk_create(
        [
            Order(
                external_id=f"O-{index:03d}",
                customer=customer,
                amount=Decimal(10),
                ordered_at=start + timedelta(hours=index),
            )
            for index in range(120)
        ]
        + [Order(external_id="X-1", customer=other, amount=Decimal(1), ordered_at=start)]
    )
    url = reverse("customers:detail", args=[customer.pk])

    first = viewer_client.get(url)
    third = viewer_client.get(url, {"orders_page": "3"})

    assert [order.external_id for order in first.context["orders"]][:2] == ["O-119", "O-118"]
    assert len(first.context["orders"]) == views.ORDERS_PAGE_SIZE == 50
    assert first.context["all_orders"] == 120
    assert f"1{DASH}50 of 120" in first.content.decode()
    assert first.context["orders_next_url"] == f"{url}?orders_page=2"
    # Past the hundredth: the oldest 20 orders, and no page after them.
    assert [order.external_id for order in third.context["orders"]] == [
        f"O-{index:03d}" for index in range(19, -1, -1)
    ]
    assert third.context["orders_next_url"] == ""
    assert third.context["orders_previous_url"] == f"{url}?orders_page=2"
    assert f"101{DASH}120 of 120" in third.content.decode()


def test_the_order_pager_gets_the_history_fragment_from_htmx(viewer_client: Client) -> None:
    customer = _customer()
    Order.objects.bulk_create(
        [
            Order(
                external_id=f"O-{index:03d}",
                customer=customer,
                amount=Decimal(10),
                ordered_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=index),
            )
            for index in range(60)
        ]
    )
    url = reverse("customers:detail", args=[customer.pk])

    response = viewer_client.get(url, {"orders_page": "2"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert page.lstrip().startswith('<section class="card ')
    assert 'id="order-history"' in page
    assert "Total spend" not in page  # the stats cards are not in the fragment
    assert response["HX-Push-Url"] == f"{url}?orders_page=2"
    assert [order.external_id for order in response.context["orders"]] == [
        f"O-{index:03d}" for index in range(9, -1, -1)
    ]
    assert "HX-Request" in response["Vary"]


def test_an_unknown_customer_is_404(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("customers:detail", args=[999999])).status_code == 404


@pytest.mark.parametrize("name", ["customers:list", "customers:detail"])
def test_anonymous_visitors_are_sent_to_sign_in(client: Client, name: str) -> None:
    args = [CustomerFactory().pk] if name == "customers:detail" else []

    response = client.get(reverse(name, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_detail_page_lists_the_segments_the_customer_is_in(
    viewer_client: Client, marketer: User, django_assert_max_num_queries: Any
) -> None:
    vip = _customer(city="Pune", tags=["vip"])
    _customer(city="Delhi")
    in_pune = segment_create(
        name="Pune",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "eq", "value": "pune"}],
            }
        ),
        created_by=marketer,
    )
    tagged = segment_create(
        name="VIPs",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "tags", "operator": "has_any", "value": ["VIP"]}],
            }
        ),
        created_by=marketer,
    )
    segment_create(
        name="Delhi",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "eq", "value": "Delhi"}],
            }
        ),
        created_by=marketer,
    )

    with django_assert_max_num_queries(2):  # the segments, then one row of flags for the customer
        found = segments_for_customer(customer_id=vip.pk)
    page = viewer_client.get(reverse("customers:detail", args=[vip.pk])).content.decode()
    # The customer page loads the panel from the segments app (customers never import it).
    panel_url = reverse("segments:for_customer", args=[vip.pk])
    assert f'hx-get="{panel_url}"' in page
    page = viewer_client.get(panel_url).content.decode()

    assert [segment.name for segment in found] == ["Pune", "VIPs"]
    assert reverse("segments:detail", args=[in_pune.pk]) in page
    assert reverse("segments:detail", args=[tagged.pk]) in page
    assert ">Delhi<" not in page.split('data-testid="customer-segments"')[1].split("</ul>")[0]
