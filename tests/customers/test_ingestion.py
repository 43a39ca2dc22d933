from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from minicrm.core.errors import ApplicationError
from minicrm.customers.ingestion import (
    MAX_BATCH_ROWS,
    CustomerRow,
    OrderRow,
    RowError,
    rows_check_size,
    rows_validate,
)

ORDER = {
    "external_id": "O-1",
    "customer_external_id": "C-1",
    "amount": "1499.00",
    "ordered_at": "2025-01-31T14:05:00+05:30",
}


def order_errors(**changes: Any) -> list[RowError]:
    row = {**ORDER, **changes}
    return rows_validate(
        [{key: value for key, value in row.items() if value is not ...}], OrderRow
    )[1]


def customer_errors(**fields: Any) -> list[RowError]:
    return rows_validate([{"external_id": "C-1", **fields}], CustomerRow)[1]


def test_csv_strings_and_json_values_validate_to_the_same_order() -> None:
    from_csv = {**ORDER, "amount": "250.5", "status": "Refunded", "currency": "usd"}
    from_json = {**ORDER, "amount": 250.5, "status": "refunded", "currency": "USD"}

    (valid, errors) = rows_validate([from_csv, from_json], OrderRow)

    assert errors == [RowError(1, "external_id", "'O-1' already appears in row 0 of this batch.")]
    row = valid[0][1]
    assert (row.amount, row.status, row.currency) == (Decimal("250.5"), "refunded", "USD")


def test_dates_without_time_or_offset_are_read_in_the_configured_time_zone() -> None:
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        valid, _errors = rows_validate([{**ORDER, "ordered_at": "2025-01-31"}], OrderRow)

    assert valid[0][1].ordered_at == datetime(2025, 1, 30, 18, 30, tzinfo=UTC)


def test_an_offset_in_the_value_wins_over_the_time_zone() -> None:
    valid, _errors = rows_validate([{**ORDER, "ordered_at": "2025-01-31T10:00:00Z"}], OrderRow)

    assert valid[0][1].ordered_at == datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "-5"}, "amount", "amount must be 0 or more, got '-5'."),
        ({"amount": "-0.01"}, "amount", "amount must be 0 or more, got '-0.01'."),
        ({"amount": "12.345"}, "amount", "amount can have at most 2 decimals, got '12.345'."),
        ({"amount": "1,000"}, "amount", "amount must be a number, got '1,000'."),
        ({"amount": "abc"}, "amount", "amount must be a number, got 'abc'."),
        ({"amount": "NaN"}, "amount", "amount must be a finite number, got 'NaN'."),
        ({"amount": True}, "amount", "amount must be a number, got True."),
        ({"amount": ...}, "amount", "This field is required."),
        ({"status": "shipped"}, "status", "Must be one of completed, cancelled, refunded."),
        ({"currency": "RUPEES"}, "currency", "Must be a three-letter currency code such as INR."),
        (
            {"ordered_at": "31/01/2025"},
            "ordered_at",
            "Use an ISO date (2024-03-15) or date-time (2024-03-15T14:05:00+05:30), "
            "not '31/01/2025'.",
        ),
        ({"ordered_at": 1700000000}, "ordered_at", "Must be an ISO date or date-time string."),
        ({"ordered_at": "0999-01-01"}, "ordered_at", "The year must be between 1900 and 2200."),
        (
            {"customer_external_id": " "},
            "customer_external_id",
            "customer_external_id must not be empty.",
        ),
        (
            {"customer_external_id": ["C-1"]},
            "customer_external_id",
            "customer_external_id must be text, got ['C-1'].",
        ),
        ({"external_id": "x" * 65}, "external_id", "external_id must be at most 64 characters."),
        ({"coupon": "SALE"}, "coupon", "Unknown field."),
    ],
)
def test_each_kind_of_bad_order_value_is_an_error_naming_its_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    assert order_errors(**changes) == [RowError(0, field, message)]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address."),
        ({"email": 42}, "email", "Must be text."),
        ({"first_name": "x" * 101}, "first_name", "At most 100 characters (got 101)."),
        ({"phone": {"home": "1"}}, "phone", "Must be text."),
        ({"tags": ["vip", ""]}, "tags", "Tag 2 must be non-empty text."),
        ({"tags": ["x" * 51]}, "tags", "Tag 'xxxxxxxxxxxxxxxxxxxx'… is longer than 50 characters."),
        ({"tags": 5}, "tags", "Must be a list of short texts (or one text split by | or ,)."),
        ({"tags": [f"t{n}" for n in range(51)]}, "tags", "At most 50 tags per customer (got 51)."),
        (
            {"attributes": "{not json"},
            "attributes",
            'Must be a JSON object, e.g. {"plan": "gold"}.',
        ),
        ({"attributes": [1, 2]}, "attributes", "Must be an object (key: value pairs)."),
        (
            {"signed_up_at": "yesterday"},
            "signed_up_at",
            "Use an ISO date (2024-03-15) or date-time (2024-03-15T14:05:00+05:30), "
            "not 'yesterday'.",
        ),
        ({"marketing_consent": "maybe"}, "marketing_consent", "Must be true or false."),
        ({"external_id": True}, "external_id", "external_id must be text, got True."),
    ],
)
def test_each_kind_of_bad_customer_value_is_an_error_naming_its_field(
    fields: dict[str, Any], field: str, message: str
) -> None:
    assert customer_errors(**fields) == [RowError(0, field, message)]


def test_a_row_with_several_bad_fields_gets_one_error_per_field() -> None:
    errors = order_errors(amount="-1", status="lost", external_id=...)

    assert [error.field for error in errors] == ["external_id", "amount", "status"]


def test_a_row_that_is_not_an_object_is_an_error_for_the_whole_row() -> None:
    _valid, errors = rows_validate(["C-1", None], CustomerRow)

    assert errors == [
        RowError(0, "", "Each row must be an object of field: value."),
        RowError(1, "", "Each row must be an object of field: value."),
    ]


def test_customer_values_are_normalised() -> None:
    valid, errors = rows_validate(
        [
            {
                "external_id": 1001,
                "email": "  Asha.Rao@Example.COM ",
                "first_name": " Asha ",
                "tags": "VIP| newsletter ,vip;Wholesale",
                "attributes": '{"plan": "gold"}',
                "marketing_consent": "no",
                "signed_up_at": "2024-03-15",
            }
        ],
        CustomerRow,
    )

    assert errors == []
    row = valid[0][1]
    assert row.external_id == "1001"
    assert row.email == "asha.rao@example.com"
    assert row.first_name == "Asha"
    assert row.tags == ["vip", "newsletter", "wholesale"]
    assert row.attributes == {"plan": "gold"}
    assert row.marketing_consent is False
    assert row.signed_up_at == datetime(2024, 3, 15, tzinfo=UTC)


def test_empty_csv_cells_clear_text_and_dates_but_leave_consent_unset() -> None:
    valid, _errors = rows_validate(
        [
            {
                "external_id": "C-1",
                "email": "",
                "signed_up_at": "",
                "tags": "",
                "marketing_consent": "",
            }
        ],
        CustomerRow,
    )

    row = valid[0][1]
    assert (row.email, row.signed_up_at, row.tags, row.marketing_consent) == ("", None, [], None)
    assert row.model_fields_set == {
        "external_id",
        "email",
        "signed_up_at",
        "tags",
        "marketing_consent",
    }


def test_empty_status_and_currency_mean_not_given() -> None:
    valid, _errors = rows_validate([{**ORDER, "status": "", "currency": " "}], OrderRow)

    assert (valid[0][1].status, valid[0][1].currency) == (None, None)


def test_a_batch_over_the_limit_is_refused_naming_rows() -> None:
    rows_check_size([{}] * MAX_BATCH_ROWS)

    with pytest.raises(ApplicationError) as raised:
        rows_check_size([{}] * (MAX_BATCH_ROWS + 1))

    assert raised.value.field == "rows"
    assert raised.value.message == (
        "A batch holds at most 10,000 rows; this one has 10,001. Split it into smaller batches."
    )
