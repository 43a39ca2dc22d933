"""Row validation for ingestion, shared by every entry point (REST, CSV import, demo data).

One pydantic model per row kind accepts both JSON values and the strings a CSV holds, so the API
and the importer can never disagree about what a valid row is. The result types live here too.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from minicrm.core.errors import ApplicationError
from minicrm.core.limits import (
    MAX_BATCH_ROWS,
    MAX_ORDER_AMOUNT,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_YEAR,
    MIN_YEAR,
)
from minicrm.core.text import text_problem

from .currency import currency_is_known

__all__ = [
    "MAX_BATCH_ROWS",
    "BulkResult",
    "CustomerByEmailRow",
    "CustomerRow",
    "OrderByEmailRow",
    "OrderRow",
    "RowError",
    "external_id_from_email",
    "rows_check_size",
    "rows_validate",
]

ORDER_STATUSES = ("completed", "cancelled", "refunded")
# A customer known only by email (a shop's export has no key of ours) gets this key, derived from
# the normalised address, so importing the same export again finds the same customer.
EMAIL_KEY_PREFIX = "email:"
EMAIL_KEY_DIGITS = 40


def external_id_from_email(email: str) -> str:
    """The stable external_id of a customer keyed by email: "email:" + 40 hex of its SHA-256.

    Hashed rather than the address itself: an external_id holds at most 64 characters, shows up
    in URLs and exports, and must not change when the address is written in another case.
    """
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return EMAIL_KEY_PREFIX + digest[:EMAIL_KEY_DIGITS]


@dataclass(frozen=True)
class RowError:
    """Why one input row was not stored: its 0-based position, the field at fault, a sentence."""

    index: int
    field: str
    message: str


@dataclass
class BulkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _storable(value: Any) -> Any:
    # NUL characters and lone surrogates fail the INSERT of the whole batch; refuse the one row.
    problem = text_problem(value)
    if problem:
        raise _error("text_unstorable", problem)
    return value


def _text(max_length: int) -> PlainValidator:
    def parse(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _error("text_type", "Must be text.")
        text = _storable(str(value).strip())
        if len(text) > max_length:
            raise _error("text_too_long", f"At most {max_length} characters (got {len(text)}).")
        return text

    return PlainValidator(parse)


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    elif isinstance(value, str):
        try:
            # Python 3.11 reads dates, date-times with "T" or a space, "Z" and UTC offsets.
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _error(
                "datetime_format",
                f"Use an ISO date (2024-03-15) or date-time (2024-03-15T14:05:00+05:30), "
                f"not {value[:40]!r}.",
            ) from None
    else:
        raise _error("datetime_type", "Must be an ISO date or date-time string.")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise _error("datetime_range", f"The year must be between {MIN_YEAR} and {MAX_YEAR}.")
    if moment.tzinfo is None:
        # A time without an offset is read in the configured time zone, like dates in rules.
        moment = moment.replace(tzinfo=timezone.get_default_timezone())
    return moment


def _optional_datetime(value: Any) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _datetime(value)


def _email(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error("email_type", "Must be text.")
    _storable(value)
    # Stored lower-case so that search and rules compare without case and use the index.
    email = value.strip().lower()
    if not email:
        return ""
    if len(email) > 254:
        raise _error("email_too_long", "At most 254 characters.")
    try:
        validate_email(email)
    except DjangoValidationError:
        raise _error("email_invalid", f"{value[:60]!r} is not a valid email address.") from None
    return email


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        # A CSV cell holds the tags in one string: "vip|newsletter" or "vip, newsletter".
        items: list[Any] = value.replace("|", ",").replace(";", ",").split(",")
        items = [item for item in items if item.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _error("tags_type", "Must be a list of short texts (or one text split by | or ,).")
    tags: list[str] = []
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise _error("tag_invalid", f"Tag {position + 1} must be non-empty text.")
        _storable(item)
        tag = item.strip().lower()
        if len(tag) > MAX_TAG_LENGTH:
            raise _error(
                "tag_too_long", f"Tag {tag[:20]!r}… is longer than {MAX_TAG_LENGTH} characters."
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise _error("tags_too_many", f"At most {MAX_TAGS} tags per customer (got {len(tags)}).")
    return tags


def _attributes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise _error(
                "attributes_json", 'Must be a JSON object, e.g. {"plan": "gold"}.'
            ) from None
    if not isinstance(value, dict):
        raise _error("attributes_type", "Must be an object (key: value pairs).")
    return _storable(value)


def _consent(value: Any) -> bool | None:
    # None means "not given": a new customer gets the default, an existing one keeps theirs.
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text == "":
        return None
    if text in {"true", "yes", "y", "1", "on", "t"}:
        return True
    if text in {"false", "no", "n", "0", "off", "f"}:
        return False
    raise _error("bool_invalid", "Must be true or false.")


def _currency(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise _error("currency_invalid", "Must be a three-letter currency code such as INR.")
    code = value.strip().upper()
    if not currency_is_known(code):
        raise _error("currency_unknown", f"{code!r} is not an ISO 4217 currency code.")
    return code


def _status(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    status = value.strip().lower() if isinstance(value, str) else value
    if status not in ORDER_STATUSES:
        raise _error("status_invalid", f"Must be one of {', '.join(ORDER_STATUSES)}.")
    return str(status)


def _no_nul(value: str) -> str:
    # pydantic's own str validation already refuses lone surrogates ("string_unicode").
    if "\x00" in value:
        raise _error("text_unstorable", text_problem(value) or "")
    return value


# Callers' keys are often numbers in JSON: the same key as their text form (the models'
# `coerce_numbers_to_str`; true/false stay errors). Native constraints validate in Rust.
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_no_nul),
]
Amount = Annotated[Decimal, Field(ge=0, le=MAX_ORDER_AMOUNT, decimal_places=2, allow_inf_nan=False)]


class CustomerRow(BaseModel):
    """One customer: a key left out keeps the stored value; empty text, date or tags clear it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    external_id: ExternalId
    email: Annotated[str, PlainValidator(_email)] = ""
    first_name: Annotated[str, _text(100)] = ""
    last_name: Annotated[str, _text(100)] = ""
    phone: Annotated[str, _text(32)] = ""
    city: Annotated[str, _text(100)] = ""
    country: Annotated[str, _text(100)] = ""
    tags: Annotated[list[str], PlainValidator(_tags)] = Field(default_factory=list)
    attributes: Annotated[dict[str, Any], PlainValidator(_attributes)] = Field(default_factory=dict)
    signed_up_at: Annotated[datetime | None, PlainValidator(_optional_datetime)] = None
    marketing_consent: Annotated[bool | None, PlainValidator(_consent)] = None


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _required_email(value: Any) -> str:
    email = _email(value)
    if not email:
        raise _error("email_missing", "An email address is required to find the customer.")
    return email


class CustomerByEmailRow(CustomerRow):
    """A customer keyed by email: `external_id` is optional (kept for a new customer, or derived
    from the email); an existing customer with that email is updated."""

    # An empty cell in a mapped external_id column means "none given", as a key left out.
    external_id: Annotated[ExternalId | None, BeforeValidator(_blank_is_none)] = None  # type: ignore[assignment]
    email: Annotated[str, PlainValidator(_required_email)]


class OrderRow(BaseModel):
    """One order. `currency` and `status` left out (or empty) keep the stored value or default
    (the shop currency). `amount` is in the order's currency: the store converts it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    external_id: ExternalId
    customer_external_id: ExternalId
    amount: Amount
    ordered_at: Annotated[datetime, PlainValidator(_datetime)]
    currency: Annotated[str | None, PlainValidator(_currency)] = None
    status: Annotated[str | None, PlainValidator(_status)] = None


class OrderByEmailRow(BaseModel):
    """An order whose customer is found by email (a shop's export names no key of ours)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    external_id: ExternalId
    customer_email: Annotated[str, PlainValidator(_required_email)]
    amount: Amount
    ordered_at: Annotated[datetime, PlainValidator(_datetime)]
    currency: Annotated[str | None, PlainValidator(_currency)] = None
    status: Annotated[str | None, PlainValidator(_status)] = None


Row = TypeVar("Row", bound=BaseModel)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text[:40] + ("…" if len(text) > 40 else "")) if isinstance(value, str) else text


def _message(error: Any) -> str:
    """The error in plain words naming the field and the value given, never pydantic's text: a
    person fixing a spreadsheet reads "amount must be a number, got 'abc'"."""
    kind, context = error["type"], error.get("ctx") or {}
    name = _field_name(error["loc"]) or "the value"
    got = _shown(error.get("input"))
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field."
    if kind in {"decimal_parsing", "decimal_type", "float_parsing", "int_parsing"}:
        return f"{name} must be a number, got {got}."
    if kind == "finite_number":
        return f"{name} must be a finite number, got {got}."
    if kind == "greater_than_equal":
        return f"{name} must be {context['ge']} or more, got {got}."
    if kind == "greater_than":
        return f"{name} must be more than {context['gt']}, got {got}."
    if kind == "less_than_equal":
        return f"{name} must be at most {context['le']:,}, got {got}."
    if kind == "decimal_max_places":
        return f"{name} can have at most {context['decimal_places']} decimals, got {got}."
    if kind in {"decimal_max_digits", "decimal_whole_digits"}:
        return f"{name} has too many digits, got {got}."
    if kind == "string_too_short":
        return f"{name} must not be empty."
    if kind == "string_too_long":
        return f"{name} must be at most {context['max_length']} characters."
    if kind == "string_type":
        return f"{name} must be text, got {got}."
    if kind == "string_unicode":
        return f"{name} holds characters that cannot be stored."
    if kind.startswith(("text_", "email_", "tag", "attributes_", "bool_", "currency_", "status_")):
        return str(error["msg"])
    if kind.startswith("datetime_"):
        return str(error["msg"])
    return f"{name} is not valid, got {got}."


def rows_check_size(rows: Sequence[Any]) -> None:
    if len(rows) > MAX_BATCH_ROWS:
        raise ApplicationError(
            f"A batch holds at most {MAX_BATCH_ROWS:,} rows; this one has {len(rows):,}. "
            "Split it into smaller batches.",
            field="rows",
        )


@cache
def _batch_validator(model: type[Row]) -> TypeAdapter[list[Row]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def rows_validate(
    rows: Sequence[Any], model: type[Row], *, key: str = "external_id"
) -> tuple[list[tuple[int, Row]], list[RowError]]:
    """Validate each row; return the valid ones with their index, and one error per bad field.

    A later row repeating an earlier row's `key` (external_id, or email for rows keyed by it) is
    an error: the first one is stored, so nothing is overwritten silently inside one batch (the
    caller can resend the later one).
    """
    try:
        # Most batches are clean: one pass through pydantic's loop costs a third less. A batch
        # with any bad row is validated again row by row to keep the good rows.
        parsed: list[tuple[int, Row]] = list(
            enumerate(_batch_validator(model).validate_python(rows))
        )
        errors: list[RowError] = []
    except ValidationError:
        parsed, errors = _rows_validate_each(rows, model)
    valid: list[tuple[int, Row]] = []
    first_seen: dict[str, int] = {}
    for index, row in parsed:
        value: str = getattr(row, key)
        earlier = first_seen.setdefault(value, index)
        if earlier == index:
            valid.append((index, row))
        else:
            message = f"{value!r} already appears in row {earlier} of this batch."
            errors.append(RowError(index, key, message))
    errors.sort(key=lambda error: error.index)
    return valid, errors


def _rows_validate_each(
    rows: Sequence[Any], model: type[Row]
) -> tuple[list[tuple[int, Row]], list[RowError]]:
    parsed: list[tuple[int, Row]] = []
    errors: list[RowError] = []
    for index, raw in enumerate(rows):
        if not isinstance(raw, Mapping):
            errors.append(RowError(index, "", "Each row must be an object of field: value."))
            continue
        try:
            parsed.append((index, model.model_validate(raw)))
        except ValidationError as error:
            errors.extend(
                RowError(index, _field_name(item["loc"]), _message(item))
                for item in error.errors(include_url=False)
            )
    return parsed, errors


def _field_name(loc: Sequence[Any]) -> str:
    # An unknown field is named by the caller's key, which is kept (in an import's errors too):
    # a NUL or lone surrogate in it is shown as an escape.
    name = ".".join(str(part) for part in loc)
    return name.encode("unicode_escape").decode("ascii") if text_problem(name) else name
