"""Column mappings: which column of an uploaded file feeds which field of ours.

One mapping format serves the import page, `import_csv --mapping` and `POST /imports`:

    {"kind": "orders", "key": "email", "line_items": true,
     "columns": {"external_id": "Name", "customer_email": "Email", "amount": "Total", ...}}

- `key` says how rows find their customer: by `external_id` (our own format), or by `email`
  (a shop's export: customers get a key derived from the email, orders find theirs by it).
- `line_items`: rows sharing an order's external_id are one order (Shopify writes one row per
  line item, with the order's own columns on its first row only).
- Orders may map `refunded_amount` (counted off the amount of an order that still counts) and
  `cancelled_at` (a filled cell means the order was cancelled), and `status` may hold a shop's
  payment status (`paid`, `refunded`, `voided`, ...), translated in `shaping`.

A mapping is guessed from the header: a remembered one for the same header, else a preset
(Shopify's customers export, in both its current and older shape, and its orders export), else
names alike (difflib). Presets list candidate columns per field; `preset_resolve` picks the ones
the file has.
"""

import difflib
import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from minicrm.core.errors import ApplicationError

from .models import Import

Kind = Literal["customers", "orders"]
Key = Literal["external_id", "email"]

# Our fields a column may feed, per kind, in the order the mapping page lists them.
TARGETS: dict[str, tuple[str, ...]] = {
    Import.Kind.CUSTOMERS: (
        "external_id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "city",
        "country",
        "tags",
        "marketing_consent",
        "signed_up_at",
        "attributes",
    ),
    Import.Kind.ORDERS: (
        "external_id",
        "customer_external_id",
        "customer_email",
        "amount",
        "ordered_at",
        "currency",
        "status",
        "refunded_amount",
        "cancelled_at",
    ),
}

# Shown on the mapping page beside the fields that exist only in mappings.
TARGET_HELP: dict[str, str] = {
    "customer_email": "The customer's email (when the file has no customer key of ours).",
    "refunded_amount": "Refunded so far; counted off the amount of an order that still counts.",
    "cancelled_at": "When it was cancelled; a filled cell means the order does not count.",
    "status": "completed, cancelled or refunded, or a shop's payment status (paid, voided, ...).",
}


def _required(kind: str, key: str) -> tuple[str, ...]:
    if kind == Import.Kind.CUSTOMERS:
        return ("email",) if key == "email" else ("external_id",)
    customer = "customer_email" if key == "email" else "customer_external_id"
    return ("external_id", customer, "amount", "ordered_at")


class ColumnMap(BaseModel):
    """A mapping resolved against one file's header: every column named is in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    key: Key = "external_id"
    line_items: bool = False
    columns: dict[str, str]

    @property
    def required(self) -> tuple[str, ...]:
        return _required(self.kind, self.key)

    def column_of(self, field: str) -> str:
        return self.columns.get(field, "")


# Candidate columns per field, first present wins: Shopify renamed columns between export shapes.
PRESETS: dict[str, dict[str, Any]] = {
    "shopify-orders": {
        "label": "Shopify orders export",
        "kind": "orders",
        "key": "email",
        "line_items": True,
        "signature": ("Name", "Financial Status", "Lineitem name"),
        "columns": {
            "external_id": ("Name",),
            "customer_email": ("Email",),
            "amount": ("Total",),
            "ordered_at": ("Created at",),
            "currency": ("Currency",),
            "status": ("Financial Status",),
            "refunded_amount": ("Refunded Amount",),
            "cancelled_at": ("Cancelled at",),
        },
    },
    "shopify-customers": {
        "label": "Shopify customers export",
        "kind": "customers",
        "key": "email",
        "line_items": False,
        "signature": ("Email", "First Name", "Total Spent", "Total Orders"),
        "columns": {
            "email": ("Email",),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "phone": ("Phone", "Default Address Phone"),
            "city": ("Default Address City", "City"),
            "country": ("Default Address Country Code", "Country Code"),
            "tags": ("Tags",),
            "marketing_consent": ("Accepts Email Marketing", "Accepts Marketing"),
        },
    },
}


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def header_hash(names: Sequence[str]) -> str:
    """The key a mapping is remembered under: the header's names, trimmed, without case."""
    joined = "\x1f".join(name.strip().lower() for name in names)
    return hashlib.sha256(joined.encode()).hexdigest()


def _present(names: Sequence[str]) -> dict[str, str]:
    # Column names as the file spells them, found without regard to case or spaces.
    return {name.strip().lower(): name.strip() for name in names if name.strip()}


def preset_match(names: Sequence[str]) -> str | None:
    """The preset whose signature columns the header has, if any."""
    present = _present(names)
    for name, preset in PRESETS.items():
        if all(column.lower() in present for column in preset["signature"]):
            return name
    return None


def preset_resolve(preset_name: str, names: Sequence[str]) -> ColumnMap:
    """A preset made concrete for this header: each field takes its first candidate present."""
    preset = PRESETS.get(preset_name)
    if preset is None:
        choices = ", ".join(PRESETS)
        raise ApplicationError(
            f"There is no mapping preset {preset_name!r}; presets are {choices}, or give a JSON "
            "mapping.",
            field="mapping",
        )
    present = _present(names)
    columns: dict[str, str] = {}
    for field, candidates in preset["columns"].items():
        found = next((present[c.lower()] for c in candidates if c.lower() in present), None)
        if found:
            columns[field] = found
    return mapping_check(
        ColumnMap(
            kind=preset["kind"], key=preset["key"], line_items=preset["line_items"], columns=columns
        ),
        names,
    )


def mapping_guess(
    names: Sequence[str], *, kind: str, presets: bool = True
) -> tuple[ColumnMap, str]:
    """A first mapping for the page to show, and how it was found (for the person to check).

    A preset wins over the `kind` asked for: a Shopify orders export uploaded as customers is
    still an orders export (the page lets the person switch)."""
    preset_name = preset_match(names) if presets else None
    if preset_name:
        return preset_resolve(preset_name, names), f"Looks like a {PRESETS[preset_name]['label']}."
    present = _present(names)
    by_normal = {_normal(name): name for name in present.values()}
    columns: dict[str, str] = {}
    taken: set[str] = set()
    for field in TARGETS[kind]:
        exact = by_normal.get(_normal(field))
        close = difflib.get_close_matches(
            _normal(field), [n for n in by_normal if by_normal[n] not in taken], n=1, cutoff=0.8
        )
        found = exact if exact and exact not in taken else (by_normal[close[0]] if close else None)
        if found:
            columns[field] = found
            taken.add(found)
    key: Key = "email" if "external_id" not in columns and "email" in columns else "external_id"
    if kind == Import.Kind.ORDERS and "customer_external_id" not in columns:
        key = "email" if "customer_email" in columns else "external_id"
    guessed = ColumnMap(kind=kind, key=key, columns=columns)  # type: ignore[arg-type]
    return guessed, "Matched by column names; check each one."


def mapping_check(mapping: ColumnMap, names: Sequence[str]) -> ColumnMap:
    """Refuse a mapping this file cannot be read with, naming what is wrong."""
    present = _present(names)
    unknown = sorted(set(mapping.columns) - set(TARGETS[mapping.kind]))
    if unknown:
        raise ApplicationError(
            f"{', '.join(unknown)} is not a field of {mapping.kind}; fields are "
            f"{', '.join(TARGETS[mapping.kind])}.",
            field="mapping",
        )
    resolved: dict[str, str] = {}
    for field, column in mapping.columns.items():
        if not column.strip():
            continue
        if column.strip().lower() not in present:
            raise ApplicationError(
                f"{field} is mapped to the column {column!r}, which the file does not have.",
                field="mapping",
            )
        resolved[field] = present[column.strip().lower()]
    missing = [field for field in mapping.required if field not in resolved]
    if missing:
        by = "email" if mapping.key == "email" else "external_id"
        raise ApplicationError(
            f"Choose a column for {', '.join(missing)} (needed for {mapping.kind} keyed by {by}).",
            field="mapping",
        )
    if mapping.line_items and mapping.kind != Import.Kind.ORDERS:
        raise ApplicationError("line_items applies to orders only.", field="mapping")
    return mapping.model_copy(update={"columns": resolved})


def mapping_parse(
    value: dict[str, Any] | str, names: Sequence[str], *, kind: str | None
) -> ColumnMap:
    """A mapping from a preset name or a JSON object (CLI file, API field, stored form)."""
    if isinstance(value, str):
        mapping = preset_resolve(value.strip(), names)
    else:
        data = {"kind": kind, **value} if kind and "kind" not in value else value
        try:
            mapping = ColumnMap.model_validate(data)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "mapping"
            raise ApplicationError(
                f"The mapping's {where} is not valid: {_plain(first)}", field="mapping"
            ) from None
        mapping = mapping_check(mapping, names)
    if kind and mapping.kind != kind:
        raise ApplicationError(
            f"The mapping is for {mapping.kind}, but the import is of {kind}.", field="mapping"
        )
    return mapping


def _plain(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "it is required."
    if kind == "extra_forbidden":
        return "it is not a mapping setting (kind, key, line_items, columns)."
    if kind == "literal_error":
        return f"use one of {error['ctx']['expected']}."
    if kind in {"dict_type", "model_type"}:
        return "it must be an object of field: column name."
    if kind in {"string_type", "bool_type", "bool_parsing"}:
        return "it has the wrong type."
    return "it is not valid."
