"""Column mappings: guesses, presets in both export shapes, checks that name what is wrong."""

import pytest

from minicrm.core.errors import ApplicationError
from minicrm.imports.mapping import (
    ColumnMap,
    header_hash,
    mapping_guess,
    mapping_parse,
    preset_match,
    preset_resolve,
)

CURRENT = [
    "Customer ID",
    "First Name",
    "Last Name",
    "Email",
    "Accepts Email Marketing",
    "Default Address City",
    "Default Address Country Code",
    "Default Address Phone",
    "Phone",
    "Total Spent",
    "Total Orders",
    "Tags",
]
OLDER = [
    "First Name",
    "Last Name",
    "Email",
    "City",
    "Country",
    "Country Code",
    "Phone",
    "Accepts Marketing",
    "Total Spent",
    "Total Orders",
    "Tags",
]
ORDERS = [
    "Name",
    "Email",
    "Financial Status",
    "Currency",
    "Total",
    "Created at",
    "Lineitem name",
    "Cancelled at",
    "Refunded Amount",
    "Id",
]


def test_the_customers_preset_reads_the_current_and_the_older_shape() -> None:
    current, older = (
        preset_resolve("shopify-customers", CURRENT),
        preset_resolve("shopify-customers", OLDER),
    )

    assert (current.kind, current.key, older.key) == ("customers", "email", "email")
    assert current.columns == {
        "email": "Email",
        "first_name": "First Name",
        "last_name": "Last Name",
        "phone": "Phone",
        "city": "Default Address City",
        "country": "Default Address Country Code",
        "tags": "Tags",
        "marketing_consent": "Accepts Email Marketing",
    }
    assert (older.columns["city"], older.columns["country"]) == ("City", "Country Code")
    assert older.columns["marketing_consent"] == "Accepts Marketing"
    assert "external_id" not in current.columns  # Shopify's Customer ID is not our key


def test_presets_are_recognised_from_the_header_whatever_the_case() -> None:
    assert preset_match(ORDERS) == "shopify-orders"
    assert preset_match([name.upper() for name in OLDER]) == "shopify-customers"
    assert preset_match(["external_id", "email"]) is None


def test_the_orders_preset_groups_line_items_and_finds_customers_by_email() -> None:
    mapping, how = mapping_guess(ORDERS, kind="customers")

    assert how == "Looks like a Shopify orders export."
    assert (mapping.kind, mapping.key, mapping.line_items) == ("orders", "email", True)
    assert mapping.columns["amount"] == "Total"
    assert mapping.columns["refunded_amount"] == "Refunded Amount"


def test_other_headers_are_guessed_by_names_alike_each_column_used_once() -> None:
    names = ["Order ID", "Customer External ID", "Amount", "Order Date", "Ordered At", "Curency"]

    mapping, how = mapping_guess(names, kind="orders")

    assert how == "Matched by column names; check each one."
    assert mapping.columns == {
        "customer_external_id": "Customer External ID",
        "amount": "Amount",
        "ordered_at": "Ordered At",
        "currency": "Curency",
    }
    assert mapping.key == "external_id"


def test_a_file_with_an_email_but_no_key_is_guessed_keyed_by_email() -> None:
    mapping, _how = mapping_guess(["E-mail", "City"], kind="customers")

    assert (mapping.key, mapping.columns) == ("email", {"email": "E-mail", "city": "City"})


def test_the_same_header_has_the_same_hash_whatever_the_case_and_spaces() -> None:
    assert header_hash(["Email", " Name "]) == header_hash(["email", "name"])
    assert header_hash(["Email", "Name"]) != header_hash(["Name", "Email"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("shopify-everything", "There is no mapping preset 'shopify-everything'"),
        ({"kind": "orders", "columns": {"amount": "Total"}}, "Choose a column for external_id"),
        (
            {"kind": "customers", "columns": {"external_id": "Nope"}},
            "external_id is mapped to the column 'Nope', which the file does not have.",
        ),
        (
            {"kind": "customers", "columns": {"coupon": "Name"}},
            "coupon is not a field of customers",
        ),
        ({"kind": "pets", "columns": {}}, "The mapping's kind is not valid: use one of"),
        ({"kind": "customers", "columns": [], "x": 1}, "The mapping's columns is not valid"),
        (
            {
                "kind": "customers",
                "key": "email",
                "line_items": True,
                "columns": {"email": "Email"},
            },
            "line_items applies to orders only.",
        ),
    ],
)
def test_a_mapping_that_cannot_read_the_file_is_refused_naming_why(
    value: object, message: str
) -> None:
    with pytest.raises(ApplicationError) as raised:
        mapping_parse(value, ORDERS, kind=None)  # type: ignore[arg-type]

    assert raised.value.field == "mapping"
    assert message in raised.value.message


def test_a_mapping_of_the_wrong_kind_for_the_import_is_refused() -> None:
    with pytest.raises(ApplicationError, match="The mapping is for orders, but the import is of"):
        mapping_parse("shopify-orders", ORDERS, kind="customers")


def test_column_names_are_matched_without_case_and_stored_as_the_file_spells_them() -> None:
    mapping = mapping_parse(
        {"kind": "customers", "columns": {"external_id": " customer id ", "city": ""}},
        CURRENT,
        kind="customers",
    )

    assert mapping == ColumnMap(kind="customers", columns={"external_id": "Customer ID"})
