"""A shop's payment status, cancellation and refund become our status and counted amount."""

import pytest

from minicrm.imports.shaping import ShapeError, order_shape


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"status": "paid"}, {"status": "completed", "amount": "100.00"}),
        ({"status": "Refunded"}, {"status": "refunded", "amount": "100.00"}),
        ({"status": "voided"}, {"status": "cancelled", "amount": "100.00"}),
        (
            {"status": "paid", "cancelled_at": "2025-01-02 10:00:00 +0530"},
            {"status": "cancelled", "amount": "100.00"},
        ),
        (
            {"status": "partially_refunded", "refunded_amount": "40.50"},
            {"status": "completed", "amount": "59.50"},
        ),
        (
            {"status": "partially refunded", "refunded_amount": "100"},
            {"status": "completed", "amount": "0.00"},
        ),
        (
            {"status": "refunded", "refunded_amount": "100.00"},
            {"status": "refunded", "amount": "100.00"},
        ),
        ({"status": "completed"}, {"status": "completed", "amount": "100.00"}),
        ({"status": "", "cancelled_at": ""}, {"amount": "100.00"}),
        ({}, {"amount": "100.00"}),
    ],
)
def test_statuses_and_refunds_become_ours(cells: dict[str, str], expected: dict[str, str]) -> None:
    assert order_shape({"amount": "100.00", **cells}) == expected


@pytest.mark.parametrize(
    ("cells", "field", "message"),
    [
        ({"status": "lost"}, "status", "status must be one of "),
        (
            {"status": "paid", "refunded_amount": "abc"},
            "refunded_amount",
            "refunded_amount must be a number, got 'abc'.",
        ),
        (
            {"status": "paid", "refunded_amount": "-1"},
            "refunded_amount",
            "refunded_amount must be 0 or more, got '-1'.",
        ),
        (
            {"status": "paid", "refunded_amount": "101"},
            "refunded_amount",
            "refunded_amount (101) is more than the order's amount (100.00).",
        ),
    ],
)
def test_unusable_cells_are_errors_in_plain_words(
    cells: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ShapeError) as raised:
        order_shape({"amount": "100.00", **cells})

    assert raised.value.field == field
    assert raised.value.message.startswith(message)


def test_a_bad_amount_is_left_for_the_amount_check_to_name() -> None:
    assert order_shape({"amount": "abc", "refunded_amount": "5"}) == {"amount": "abc"}
