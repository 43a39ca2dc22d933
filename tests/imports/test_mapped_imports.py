"""Mapped imports end to end: line items across chunks, repeated keys across a resume, plain row
errors in place on the page, and the mapping taken by the command and the API."""

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import Role
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customers_bulk_upsert
from minicrm.imports import services
from minicrm.imports.models import Import
from minicrm.imports.services import import_create, import_process
from tests.factories import UserFactory

from .conftest import csv_file

pytestmark = pytest.mark.django_db

ORDERS = (Path(__file__).parent / "data" / "shopify_orders_export.csv").read_bytes()
EMAILS = ["asha.rao@example.com", "ravi.k@example.com", "meera@example.com"]


def _customers() -> None:
    customers_bulk_upsert(rows=[{"email": email} for email in EMAILS], key="email")


def _process(content: str | bytes, mapping: Any, **kwargs: Any) -> Import:
    created = import_create(
        file=csv_file(content), kind=None, created_by=None, mapping=mapping, enqueue=False
    )
    return import_process(import_id=created.pk, **kwargs)


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_an_orders_line_items_are_never_split_between_chunks(chunk_size: int) -> None:
    _customers()

    done = _process(ORDERS, "shopify-orders", chunk_size=chunk_size)

    assert (done.processed_rows, done.created, done.grouped_rows, done.failed_rows) == (6, 5, 1, 0)
    assert Order.objects.get(external_id="#1001").amount == 2498


def test_an_order_name_met_again_later_in_the_file_is_a_row_error() -> None:
    _customers()
    lines = ORDERS.decode().splitlines()
    content = "\n".join([*lines, lines[1].replace("2498.00", "1.00")]) + "\n"

    done = _process(content, "shopify-orders")

    assert done.errors == [
        {
            "row": 8,
            "field": "external_id",
            "column": "Name",
            "value": "#1001",
            "message": "'#1001' already appears in row 2 of this file; each record may appear "
            "only once.",
        }
    ]
    assert Order.objects.get(external_id="#1001").amount == 2498


def test_a_key_seen_before_a_crash_is_still_a_repeat_after_the_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = "external_id,city\nC-1,Pune\nC-2,Goa\nC-1,Delhi\n"
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )
    real_upsert = services.customers_bulk_upsert

    def failing_second(*, rows: Any, key: str) -> Any:
        if rows[0]["external_id"] == "C-2":
            raise OperationalError("database is locked")
        return real_upsert(rows=rows, key=key)

    monkeypatch.setattr(services, "customers_bulk_upsert", failing_second)
    with pytest.raises(OperationalError):
        import_process(import_id=created.pk, chunk_size=1)
    monkeypatch.setattr(services, "customers_bulk_upsert", real_upsert)

    done = import_process(import_id=created.pk, chunk_size=1)

    assert (done.created, done.error_count) == (2, 1)
    assert done.errors[0]["message"].startswith("'C-1' already appears in row 2 of this file")
    assert Customer.objects.get(external_id="C-1").city == "Pune"


def test_row_errors_name_the_files_column_and_value_in_plain_words() -> None:
    _customers()
    lines = ORDERS.decode().splitlines()
    bad_total = lines[3].replace(",799.00,,0.00,,", ",abc,,0.00,,", 1)
    content = "\n".join([lines[0], bad_total, lines[5]]) + "\n"

    done = _process(content, "shopify-orders")

    assert [(e["row"], e["column"], e["value"], e["message"]) for e in done.errors] == [
        (2, "Total", "abc", "amount must be a number, got 'abc'.")
    ]


def test_the_import_page_shows_the_first_row_errors_in_place(marketer_client: Client) -> None:
    content = "external_id,email\n" + "".join(f"C-{n},bad{n}\n" for n in range(7))
    done = _process(
        content, {"kind": "customers", "columns": {"external_id": "external_id", "email": "email"}}
    )

    page = marketer_client.get(reverse("imports:list")).content.decode()

    assert f'data-row-errors="{done.pk}"' in page
    assert (
        '<tr><td class="tabular">2</td><td>email</td><td class="value">bad0</td>'
        "<td>&#x27;bad0&#x27; is not a valid email address.</td></tr>"
    ) in page
    assert "bad4" in page
    assert "bad5" not in page
    assert "The first 5 of 7 errors; the error report has all of them." in page


def test_the_api_refuses_a_mapping_it_cannot_read_naming_the_field(api_client: Client) -> None:
    def post(**data: Any) -> Any:
        return api_client.post("/api/v1/imports", {"file": csv_file(ORDERS, "o.csv"), **data})

    cases = [
        (post(mapping="{not json"), "mapping", "mapping must be a preset name or a JSON object."),
        (post(), "kind", "Give kind (customers or orders), or a mapping."),
        (post(mapping="shopify-orders", kind="customers"), "mapping", "The mapping is for orders"),
        (
            post(mapping=json.dumps({"kind": "orders", "columns": {"amount": "Totals"}})),
            "mapping",
            "amount is mapped to the column 'Totals', which the file does not have.",
        ),
    ]

    for response, field, message in cases:
        assert response.status_code == 400
        assert response.json()["field"] == field
        assert response.json()["detail"].startswith(message)
    assert not Import.objects.exists()


def test_the_command_takes_a_json_mapping_file(tmp_path: Path) -> None:
    _customers()
    data = tmp_path / "orders.csv"
    data.write_bytes(ORDERS)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "kind": "orders",
                "key": "email",
                "line_items": True,
                "columns": {
                    "external_id": "Name",
                    "customer_email": "Email",
                    "amount": "Subtotal",
                    "ordered_at": "Created at",
                },
            }
        )
    )
    out = StringIO()

    call_command("import_csv", str(data), "--mapping", str(mapping), stdout=out, stderr=StringIO())

    assert (
        "5 created, 0 updated, 0 unchanged, 1 line items grouped, 0 rows failed" in out.getvalue()
    )
    # No status column mapped: every order counts, at its subtotal.
    assert Customer.objects.get(email="ravi.k@example.com").total_spend == 3650


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("nowhere.json", "--mapping 'nowhere.json' is neither a preset"),
        ("shopify-everything", "is neither a preset"),
    ],
)
def test_the_command_refuses_a_mapping_it_cannot_use(
    tmp_path: Path, mapping: str, message: str
) -> None:
    data = tmp_path / "orders.csv"
    data.write_bytes(ORDERS)

    with pytest.raises(CommandError, match=message):
        call_command("import_csv", str(data), "--mapping", mapping)
    with pytest.raises(CommandError, match="Give --kind"):
        call_command("import_csv", str(data))
    assert not Import.objects.exists()


def test_confirming_a_mapping_twice_is_a_conflict(
    marketer_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    _customers()
    marketer_client.post(reverse("imports:upload"), {"kind": "orders", "file": csv_file(ORDERS)})
    uploaded = Import.objects.get()
    url = reverse("imports:mapping", args=[uploaded.pk])
    form = {
        "kind": "orders",
        "key": "email",
        "line_items": "on",
        "column-external_id": "Name",
        "column-customer_email": "Email",
        "column-amount": "Total",
        "column-ordered_at": "Created at",
    }
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(url, form)

    again = marketer_client.post(url, form, follow=True)

    assert "is already succeeded" in again.content.decode()
    assert Order.objects.count() == 5


def test_the_mapping_page_switches_kind_and_is_for_marketers_only(
    marketer_client: Client,
) -> None:
    marketer_client.post(
        reverse("imports:upload"),
        {
            "kind": "customers",
            "file": csv_file("Order,Buyer,Amount,Ordered At\nO-1,C-1,5,2025-01-01\n"),
        },
    )
    url = reverse("imports:mapping", args=[Import.objects.get().pk])

    as_customers = marketer_client.get(url).content.decode()
    as_orders = marketer_client.get(f"{url}?kind=orders").content.decode()

    assert 'name="kind" value="customers"' in as_customers
    assert 'name="kind" value="orders"' in as_orders
    assert '<option value="Amount" selected>Amount</option>' in as_orders
    assert '<option value="Ordered At" selected>Ordered At</option>' in as_orders
    viewer = Client()
    viewer.force_login(UserFactory(role=Role.VIEWER))
    assert viewer.get(url).status_code == 403
