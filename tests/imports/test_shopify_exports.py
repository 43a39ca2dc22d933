"""Shopify's own export files, imported keyed by email through the CLI, the API and the import
page: every customer's spend, order count and dates come out as the shop's books say, and the
same files imported again change nothing.

The files (tests/imports/data, made-up rows in Shopify's shapes) hold: #1001 with two line
items, #1002 refunded, #1003 partially refunded (counts 3200 - 1600), #1004 voided and
cancelled, #1005 free; the customers export in its current and its older shape.
"""

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from minicrm.customers.ingestion import external_id_from_email
from minicrm.customers.models import Customer, Order
from minicrm.imports.models import ColumnMapping, Import
from tests.customers.rows import snapshot

from .conftest import csv_file

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
CUSTOMERS = DATA / "shopify_customers_export.csv"
CUSTOMERS_OLDER = DATA / "shopify_customers_export_older.csv"
ORDERS = DATA / "shopify_orders_export.csv"
IST = ZoneInfo("Asia/Kolkata")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


# email -> (spend, completed orders, first order, last order), from the sample's README.
EXPECTED = {
    "asha.rao@example.com": (Decimal("2498.00"), 1, _at("2025-10-07 09:50:26")),
    "ravi.k@example.com": (Decimal("1600.00"), 1, _at("2025-11-01 11:15:00")),
    "meera@example.com": (Decimal("0.00"), 1, _at("2025-11-05 12:30:00")),
}
ORDERS_EXPECTED = {
    "#1001": (Decimal("2498.00"), "completed", "asha.rao@example.com"),
    "#1002": (Decimal("799.00"), "refunded", "asha.rao@example.com"),
    "#1003": (Decimal("1600.00"), "completed", "ravi.k@example.com"),
    "#1004": (Decimal("450.00"), "cancelled", "ravi.k@example.com"),
    "#1005": (Decimal("0.00"), "completed", "meera@example.com"),
}


def assert_books_match() -> None:
    customers = {c.email: c for c in Customer.objects.all()}
    assert set(customers) == set(EXPECTED)
    for email, (spend, count, ordered_at) in EXPECTED.items():
        customer = customers[email]
        assert customer.external_id == external_id_from_email(email)
        assert (customer.total_spend, customer.order_count) == (spend, count)
        assert customer.first_order_at == customer.last_order_at == ordered_at
    orders = {
        o.external_id: (o.amount, o.status, o.customer.email, o.currency)
        for o in Order.objects.select_related("customer")
    }
    assert orders == {key: (*value, "INR") for key, value in ORDERS_EXPECTED.items()}
    asha = customers["asha.rao@example.com"]
    assert (asha.first_name, asha.last_name, asha.city, asha.country) == (
        "Asha",
        "Rao",
        "Pune",
        "IN",
    )
    assert sorted(asha.tag_rows.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert customers["ravi.k@example.com"].marketing_consent is False
    assert customers["meera@example.com"].marketing_consent is True


def test_the_command_imports_both_customer_shapes_and_the_orders_and_again_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path, preset in ((CUSTOMERS, "shopify-customers"), (ORDERS, "shopify-orders")):
        call_command("import_csv", str(path), mapping=preset)
    assert_books_match()
    before = snapshot()

    # The older customers export names the same people by email: nobody is added.
    for path, preset in (
        (CUSTOMERS_OLDER, "shopify-customers"),
        (CUSTOMERS, "shopify-customers"),
        (ORDERS, "shopify-orders"),
    ):
        call_command("import_csv", str(path), mapping=preset)

    assert snapshot() == before
    out = capsys.readouterr().out
    last = Import.objects.order_by("pk").last()
    assert last is not None
    assert (
        f"Import {last.pk}: 6 rows read, 0 created, 0 updated, 5 unchanged, 1 line items grouped"
        in out
    )
    assert (last.failed_rows, last.error_count) == (0, 0)


def test_the_api_takes_presets_and_a_json_mapping_with_the_same_result(
    api_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    def upload(path: Path, mapping: str) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post(
                "/api/v1/imports",
                {"mapping": mapping, "file": csv_file(path.read_bytes(), path.name)},
            )
        assert response.status_code == 202, response.json()
        return api_client.get(f"/api/v1/imports/{response.json()['id']}").json()

    older = (
        '{"kind": "customers", "key": "email", "columns": {"email": "Email", '
        '"first_name": "First Name", "last_name": "Last Name", "city": "City", '
        '"country": "Country Code", "tags": "Tags", "marketing_consent": "Accepts Marketing"}}'
    )
    first = upload(CUSTOMERS_OLDER, older)
    orders = upload(ORDERS, "shopify-orders")
    assert_books_match()
    before = snapshot()
    again = [upload(CUSTOMERS, "shopify-customers"), upload(ORDERS, "shopify-orders")]

    assert snapshot() == before
    assert (first["kind"], first["created"], first["mapping"]["key"]) == ("customers", 3, "email")
    assert (orders["kind"], orders["created"], orders["grouped_rows"]) == ("orders", 5, 1)
    assert [(i["unchanged"], i["failed_rows"]) for i in again] == [(3, 0), (5, 0)]


def _selected_mapping(page: str) -> dict[str, str]:
    """The form the mapping page shows, as the browser would post it untouched."""
    form: dict[str, str] = {}
    for name, options in re.findall(
        r'<select id="[^"]+" name="([^"]+)">(.*?)</select>', page, re.S
    ):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        form[name] = chosen.group(1) if chosen else ""
    form["kind"] = re.search(r'name="kind" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
    form["key"] = re.search(r'name="key" value="(\w+)" checked', page).group(1)  # type: ignore[union-attr]
    if re.search(r'name="line_items" checked', page):
        form["line_items"] = "on"
    return form


def test_the_import_page_guesses_the_presets_and_importing_twice_changes_nothing(
    marketer_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    def through_the_page(path: Path, kind: str, expected_how: str) -> Import:
        uploaded = marketer_client.post(
            reverse("imports:upload"),
            {"kind": kind, "file": csv_file(path.read_bytes(), path.name)},
        )
        page = marketer_client.get(uploaded["Location"]).content.decode()
        assert expected_how in page
        with django_capture_on_commit_callbacks(execute=True):
            marketer_client.post(uploaded["Location"], _selected_mapping(page))
        return Import.objects.order_by("pk").last()  # type: ignore[return-value]

    # Uploaded as "customers" by mistake: the orders preset wins, and says so.
    through_the_page(CUSTOMERS, "customers", "Looks like a Shopify customers export.")
    orders = through_the_page(ORDERS, "customers", "Looks like a Shopify orders export.")
    assert_books_match()
    before = snapshot()
    assert ColumnMapping.objects.count() == 2

    again = through_the_page(ORDERS, "orders", "The mapping last used for this header.")
    older = through_the_page(CUSTOMERS_OLDER, "customers", "Looks like a Shopify customers export.")

    assert snapshot() == before
    assert (orders.kind, orders.status, orders.created, orders.grouped_rows) == (
        "orders",
        "succeeded",
        5,
        1,
    )
    assert (again.unchanged, again.failed_rows, older.unchanged, older.failed_rows) == (5, 0, 3, 0)
