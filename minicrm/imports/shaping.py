"""Turning one mapped file row into the row the ingestion services take.

A shop's orders export says what happened to an order in its own words: a payment status
(`paid`, `partially_refunded`, `refunded`, `voided`, ...), a cancellation date and a refunded
amount. Here they become our status and the amount that counts, so the ingestion services (and
the customer stats) never learn any shop's vocabulary.
"""

from decimal import Decimal, InvalidOperation

from minicrm.customers.models import Order

from .mapping import ColumnMap

COMPLETED, CANCELLED, REFUNDED = (
    Order.Status.COMPLETED.value,
    Order.Status.CANCELLED.value,
    Order.Status.REFUNDED.value,
)

# A shop's payment status -> ours. Money taken or still expected counts; money given back or
# never taken does not. Our own statuses pass through.
STATUS_WORDS: dict[str, str] = {
    COMPLETED: COMPLETED,
    CANCELLED: CANCELLED,
    REFUNDED: REFUNDED,
    "paid": COMPLETED,
    "partially_paid": COMPLETED,
    "partially_refunded": COMPLETED,
    "authorized": COMPLETED,
    "pending": COMPLETED,
    "voided": CANCELLED,
    "expired": CANCELLED,
}


class ShapeError(Exception):
    """A cell that cannot be used: the field it feeds and a plain message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def row_key(values: dict[str, str], mapping: ColumnMap) -> str:
    """What makes two rows of one file the same record (a repeat is a row error)."""
    if mapping.kind == "customers" and mapping.key == "email":
        return values.get("email", "").strip().lower()
    return values.get("external_id", "")


def order_shape(values: dict[str, str]) -> dict[str, str]:
    """Our status and counted amount from a payment status, a cancellation and a refund."""
    word = values.pop("status", None)
    cancelled_at = values.pop("cancelled_at", None)
    refunded = values.pop("refunded_amount", None)
    status: str | None = None
    if word is not None and word.strip():
        status = STATUS_WORDS.get(word.strip().lower().replace(" ", "_"))
        if status is None:
            known = ", ".join(sorted(STATUS_WORDS))
            raise ShapeError("status", f"status must be one of {known}, got {word[:40]!r}.")
    if cancelled_at and cancelled_at.strip():
        status = CANCELLED
    if status is not None:
        values["status"] = status
    # An empty status keeps the stored one (or the default), as in our own format.
    if refunded and refunded.strip() and values.get("status", COMPLETED) == COMPLETED:
        values["amount"] = str(_refund_off(values.get("amount", ""), refunded))
    return values


def _refund_off(amount: str, refunded: str) -> Decimal | str:
    try:
        back = Decimal(refunded.strip())
    except InvalidOperation:
        raise ShapeError(
            "refunded_amount", f"refunded_amount must be a number, got {refunded[:40]!r}."
        ) from None
    try:
        total = Decimal(amount.strip())
    except InvalidOperation:
        return amount  # the amount's own validation names the problem
    if not back.is_finite() or back < 0:
        raise ShapeError(
            "refunded_amount", f"refunded_amount must be 0 or more, got {refunded[:40]!r}."
        )
    if back > total:
        raise ShapeError(
            "refunded_amount",
            f"refunded_amount ({refunded.strip()}) is more than the order's amount ({amount}).",
        )
    return total - back


def row_shape(values: dict[str, str], mapping: ColumnMap) -> dict[str, str]:
    """The ingestion row for one mapped file row (raises ShapeError)."""
    if mapping.kind == "orders":
        return order_shape(values)
    return values
