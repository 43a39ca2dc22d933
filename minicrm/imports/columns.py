"""The columns a customers or orders CSV may have, with a description and an example of each.

The columns are the fields of the ingestion row models, so a file and the REST API accept the same
data; a field those models gain shows up here (and the tests ask for its help text).
"""

from pydantic import BaseModel

from minicrm.customers.ingestion import CustomerRow, OrderRow

from .models import Import
from .reader import ColumnSpec


def _spec(model: type[BaseModel]) -> ColumnSpec:
    fields = model.model_fields
    return ColumnSpec(
        required=tuple(name for name, field in fields.items() if field.is_required()),
        optional=tuple(name for name, field in fields.items() if not field.is_required()),
    )


COLUMNS: dict[str, ColumnSpec] = {
    Import.Kind.CUSTOMERS: _spec(CustomerRow),
    Import.Kind.ORDERS: _spec(OrderRow),
}

# Shown on the import page next to each column: what it holds and a value that would be accepted.
COLUMN_HELP: dict[str, dict[str, tuple[str, str]]] = {
    Import.Kind.CUSTOMERS: {
        "external_id": ("Your own unique key; a known key updates that customer.", "C-1001"),
        "email": ("Email address.", "asha@example.com"),
        "first_name": ("First name.", "Asha"),
        "last_name": ("Last name.", "Rao"),
        "phone": ("Phone number.", "+91 98765 43210"),
        "city": ("City.", "Pune"),
        "country": ("Country.", "India"),
        "tags": ("Tags separated by | or ,.", "vip|newsletter"),
        "marketing_consent": ("Whether they agreed to marketing: true or false.", "true"),
        "signed_up_at": ("When they signed up: YYYY-MM-DD or ISO date-time.", "2024-03-15"),
        "attributes": ("Anything else, as a JSON object.", '{"plan": "gold"}'),
    },
    Import.Kind.ORDERS: {
        "external_id": ("Your own unique key for the order.", "O-5001"),
        "customer_external_id": ("The external_id of the customer who ordered.", "C-1001"),
        "amount": ("Order value, 0 or more (a free order is 0), with up to 2 decimals.", "1499.00"),
        "ordered_at": ("When it was ordered: YYYY-MM-DD or ISO date-time.", "2025-01-31T14:05:00"),
        "currency": (
            "ISO 4217 code; empty is the shop currency. Another is converted with its rate for "
            "the order's date (Customers > Exchange rates); without one the row is refused.",
            "INR",
        ),
        "status": ("completed, cancelled or refunded; only completed ones count.", "completed"),
    },
}
