"""The segment rule format (DESIGN.md, "Segment rules") as typed nodes validated on construction.

`parse_rules` turns untrusted JSON into a `RuleGroup` or raises `RuleValidationError` whose errors
name the path of each problem (`conditions[1].conditions[0].operator`). `FIELDS` describes every
field and operator for rule builders, in the order a builder should show them.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypedDict, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from minicrm.core.limits import (
    MAX_RULE_CONDITIONS,
    MAX_RULE_DATE,
    MAX_RULE_DAYS,
    MAX_RULE_DEPTH,
    MAX_RULE_GROUPS,
    MAX_RULE_INTEGER,
    MAX_RULE_LIST_ITEMS,
    MAX_RULE_MONEY,
    MAX_RULE_TEXT_LENGTH,
    MAX_RULE_TREE_LIST_ITEMS,
    MAX_RULE_TREE_TEXT_CHARS,
    MAX_TAG_LENGTH,
    MIN_RULE_DATE,
)

EMPTY_RULES: dict[str, Any] = {"match": "all", "conditions": []}

FieldType = Literal["money", "integer", "date", "text", "tags", "boolean", "attribute"]
ValueKind = Literal[
    "number", "money", "date", "days", "text", "list", "range", "none", "scalar", "decimal"
]
# `attributes.<key>`: a condition on one key of the customer's own `attributes` object.
ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_ -]{1,64}$")
# Number values of attribute conditions: bounded, and on a grid every database holds exactly.
MAX_ATTRIBUTE_NUMBER = Decimal("1000000000000000")
ATTRIBUTE_NUMBER_PLACES = 6


@dataclass(frozen=True)
class OperatorSpec:
    key: str
    label: str
    value_kind: ValueKind

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "label": self.label, "value_kind": self.value_kind}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    type: FieldType
    operators: tuple[OperatorSpec, ...]
    # Largest value a number condition accepts (days_since_last_order is bounded by the calendar).
    max_value: int | None = None

    def operator(self, key: str) -> OperatorSpec | None:
        return next((op for op in self.operators if op.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "operators": [op.as_dict() for op in self.operators],
        }


def _number_operators(kind: ValueKind) -> tuple[OperatorSpec, ...]:
    return (
        OperatorSpec("gt", "is more than", kind),
        OperatorSpec("gte", "is at least", kind),
        OperatorSpec("lt", "is less than", kind),
        OperatorSpec("lte", "is at most", kind),
        OperatorSpec("eq", "is exactly", kind),
        OperatorSpec("ne", "is not", kind),
        OperatorSpec("between", "is between", "range"),
    )


DATE_OPERATORS = (
    OperatorSpec("in_last_days", "is in the last N days", "days"),
    OperatorSpec("not_in_last_days", "is not in the last N days", "days"),
    OperatorSpec("before", "is before", "date"),
    OperatorSpec("after", "is after", "date"),
    OperatorSpec("on", "is on", "date"),
    OperatorSpec("between", "is between", "range"),
    OperatorSpec("is_empty", "is empty", "none"),
    OperatorSpec("is_not_empty", "is not empty", "none"),
)
TEXT_OPERATORS = (
    OperatorSpec("eq", "is", "text"),
    OperatorSpec("ne", "is not", "text"),
    OperatorSpec("contains", "contains", "text"),
    OperatorSpec("not_contains", "does not contain", "text"),
    OperatorSpec("starts_with", "starts with", "text"),
    OperatorSpec("in", "is one of", "list"),
    OperatorSpec("not_in", "is none of", "list"),
    OperatorSpec("is_empty", "is empty", "none"),
    OperatorSpec("is_not_empty", "is not empty", "none"),
)
BOOLEAN_OPERATORS = (
    OperatorSpec("is_true", "is yes", "none"),
    OperatorSpec("is_false", "is no", "none"),
)
TAG_OPERATORS = (
    OperatorSpec("has_any", "has any of", "list"),
    OperatorSpec("has_all", "has all of", "list"),
    OperatorSpec("has_none", "has none of", "list"),
)

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("total_spend", "Total spend", "money", _number_operators("money")),
    FieldSpec("order_count", "Number of orders", "integer", _number_operators("number")),
    FieldSpec("avg_order_value", "Average order value", "money", _number_operators("money")),
    FieldSpec("last_order_date", "Last order date", "date", DATE_OPERATORS),
    FieldSpec(
        "days_since_last_order",
        "Days since last order",
        "integer",
        _number_operators("number"),
        max_value=MAX_RULE_DAYS,
    ),
    FieldSpec("first_order_date", "First order date", "date", DATE_OPERATORS),
    FieldSpec("signup_date", "Sign-up date", "date", DATE_OPERATORS),
    FieldSpec("city", "City", "text", TEXT_OPERATORS),
    FieldSpec("country", "Country", "text", TEXT_OPERATORS),
    FieldSpec("email", "Email", "text", TEXT_OPERATORS),
    FieldSpec("tags", "Tags", "tags", TAG_OPERATORS),
    FieldSpec("marketing_consent", "Marketing consent", "boolean", BOOLEAN_OPERATORS),
    FieldSpec("unsubscribed", "Unsubscribed", "boolean", BOOLEAN_OPERATORS),
)
FIELDS_BY_KEY: dict[str, FieldSpec] = {spec.key: spec for spec in FIELDS}

# An attribute's value is text, a number or true/false, as the data holds it: the builder infers
# the type from stored values and offers that type's operators; a rule says which comparison it
# means by its operator (and, for eq/ne, by its value: a number or a text).
ATTRIBUTE_OPERATORS_BY_TYPE: dict[str, tuple[OperatorSpec, ...]] = {
    "text": TEXT_OPERATORS,
    "number": (
        *_number_operators("decimal"),
        OperatorSpec("is_empty", "is empty", "none"),
        OperatorSpec("is_not_empty", "is not empty", "none"),
    ),
    "boolean": (
        *BOOLEAN_OPERATORS,
        OperatorSpec("is_empty", "is empty", "none"),
        OperatorSpec("is_not_empty", "is not empty", "none"),
    ),
}
ATTRIBUTE_OPERATORS: tuple[OperatorSpec, ...] = (
    OperatorSpec("eq", "is", "scalar"),
    OperatorSpec("ne", "is not", "scalar"),
    *(op for op in TEXT_OPERATORS if op.key not in ("eq", "ne")),
    *(op for op in _number_operators("decimal") if op.key not in ("eq", "ne")),
    *BOOLEAN_OPERATORS,
)


def attribute_key(field: str) -> str | None:
    """The key of an `attributes.<key>` field (None for any other field)."""
    if not field.startswith(ATTRIBUTE_PREFIX):
        return None
    key = field[len(ATTRIBUTE_PREFIX) :]
    return key if ATTRIBUTE_KEY.match(key) else None


def field_spec(field: str) -> FieldSpec | None:
    """The spec of a rule field: a fixed field, or `attributes.<key>` with a valid key."""
    spec = FIELDS_BY_KEY.get(field)
    if spec is not None:
        return spec
    key = attribute_key(field)
    if key is None:
        return None
    return FieldSpec(field, f"Attribute “{key}”", "attribute", ATTRIBUTE_OPERATORS)


def fields_metadata() -> list[dict[str, Any]]:
    """`FIELDS` as JSON-ready dicts, for a builder's script."""
    return [spec.as_dict() for spec in FIELDS]


def attribute_operators_metadata() -> dict[str, list[dict[str, str]]]:
    """The operators a builder offers for an attribute of each inferred type."""
    return {
        kind: [op.as_dict() for op in operators]
        for kind, operators in ATTRIBUTE_OPERATORS_BY_TYPE.items()
    }


# --- Value checks ----------------------------------------------------------------------------
# Each returns the typed value or raises PydanticCustomError with a message meant for people.

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("rule_value", message)


def _money(raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise _invalid("must be an amount of money, like 5000 or 49.99")
    try:
        value = Decimal(str(raw).strip()) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        raise _invalid("must be an amount of money, like 5000 or 49.99") from None
    if not value.is_finite():
        raise _invalid("must be an amount of money, like 5000 or 49.99")
    if value < 0:
        raise _invalid("must be 0 or more")
    if value > MAX_RULE_MONEY:
        raise _invalid(f"must be at most {MAX_RULE_MONEY:,}")
    if value != value.quantize(Decimal("0.01")):
        raise _invalid("must have at most 2 decimal places")
    return value.quantize(Decimal("0.01"))


def _integer(raw: object, *, minimum: int, maximum: int) -> int:
    value: int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit():
        value = int(raw.strip())
    if value is None:
        raise _invalid("must be a whole number")
    if value < minimum:
        raise _invalid(f"must be {minimum} or more")
    if value > maximum:
        raise _invalid(f"must be at most {maximum:,}")
    return value


def _date(raw: object) -> date:
    if isinstance(raw, date):
        value = raw
    elif isinstance(raw, str) and DATE_PATTERN.match(raw):
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            raise _invalid(f"{raw!r} is not a real date") from None
    else:
        raise _invalid("must be a date written YYYY-MM-DD")
    if not MIN_RULE_DATE <= value <= MAX_RULE_DATE:
        raise _invalid(f"must be between {MIN_RULE_DATE} and {MAX_RULE_DATE}")
    return value


def _text(raw: object, *, max_length: int = MAX_RULE_TEXT_LENGTH) -> str:
    if not isinstance(raw, str):
        raise _invalid("must be text")
    if raw == "":
        raise _invalid("must not be empty (use the 'is empty' operator for empty values)")
    if len(raw) > max_length:
        raise _invalid(f"must be at most {max_length} characters")
    return raw


def _text_list(raw: object, *, max_length: int) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise _invalid("must be a non-empty list of text values")
    if len(raw) > MAX_RULE_LIST_ITEMS:
        raise _invalid(f"must have at most {MAX_RULE_LIST_ITEMS} items")
    items = []
    for index, item in enumerate(raw):
        try:
            items.append(_text(item, max_length=max_length))
        except PydanticCustomError as error:
            raise _invalid(f"item {index}: {error.message()}") from None
    return tuple(items)


def _attribute_number(raw: object) -> Decimal:
    message = "must be a number, like 3 or 2.5"
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise _invalid(message)
    try:
        value = Decimal(str(raw).strip()) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        raise _invalid(message) from None
    if not value.is_finite():
        raise _invalid(message)
    if abs(value) > MAX_ATTRIBUTE_NUMBER:
        raise _invalid(f"must be between -{MAX_ATTRIBUTE_NUMBER:,} and {MAX_ATTRIBUTE_NUMBER:,}")
    grid = Decimal(1).scaleb(-ATTRIBUTE_NUMBER_PLACES)
    if value != value.quantize(grid):
        raise _invalid(f"must have at most {ATTRIBUTE_NUMBER_PLACES} decimal places")
    return value.normalize() if value != 0 else Decimal(0)


def _scalar(spec: FieldSpec, operator: OperatorSpec, raw: object) -> Any:
    if operator.value_kind == "scalar":
        # An attribute is compared as a number when the rule's value is one, else as text.
        if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
            return _attribute_number(raw)
        return _text(raw)
    if operator.value_kind == "decimal" or (
        spec.type == "attribute" and operator.value_kind == "range"
    ):
        return _attribute_number(raw)
    if operator.value_kind == "days":
        return _integer(raw, minimum=1, maximum=MAX_RULE_DAYS)
    if spec.type == "money":
        return _money(raw)
    if spec.type == "integer":
        return _integer(raw, minimum=0, maximum=spec.max_value or MAX_RULE_INTEGER)
    if spec.type == "date":
        return _date(raw)
    return _text(raw)


def _range(spec: FieldSpec, operator: OperatorSpec, raw: object) -> tuple[Any, Any]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise _invalid("'between' needs two values: [low, high]")
    bounds = []
    for index, item in enumerate(raw):
        try:
            bounds.append(_scalar(spec, operator, item))
        except PydanticCustomError as error:
            which = "low" if index == 0 else "high"
            raise _invalid(f"{which} value (item {index}) {error.message()}") from None
    low, high = bounds
    if low > high:
        raise _invalid("'between' needs low ≤ high")
    return low, high


def validate_value(spec: FieldSpec, operator: OperatorSpec, raw: object) -> Any:
    """The typed value of a condition, checked against its field and operator."""
    if operator.value_kind == "none":
        if raw is None or raw == "":
            return None
        raise _invalid(f"'{operator.key}' takes no value")
    if raw is None:
        raise _invalid("a value is required")
    if operator.value_kind == "range":
        return _range(spec, operator, raw)
    if operator.value_kind == "list":
        length = MAX_TAG_LENGTH if spec.type == "tags" else MAX_RULE_TEXT_LENGTH
        return _text_list(raw, max_length=length)
    return _scalar(spec, operator, raw)


# --- Nodes -----------------------------------------------------------------------------------


class Condition(BaseModel):
    """One comparison of one customer field, e.g. total spend more than 5000."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    operator: str
    # Typed by field and operator: Decimal, int, date, str, tuple[str, ...] (lists),
    # (low, high) for `between`, or None.
    value: Any = Field(default=None, validate_default=True)

    @field_validator("field")
    @classmethod
    def _known_field(cls, field: str) -> str:
        if field.startswith(ATTRIBUTE_PREFIX) and attribute_key(field) is None:
            raise PydanticCustomError(
                "unknown_field",
                f"Attribute key '{field[len(ATTRIBUTE_PREFIX) :][:80]}' is not valid: use 1 to "
                "64 letters, digits, spaces, '_' or '-'",
            )
        if field_spec(field) is None:
            known = ", ".join(FIELDS_BY_KEY)
            raise PydanticCustomError(
                "unknown_field",
                f"Unknown field '{field}'. Use one of: {known}, or attributes.<key>",
            )
        return field

    @field_validator("operator")
    @classmethod
    def _known_operator(cls, operator: str, info: ValidationInfo) -> str:
        spec = field_spec(info.data.get("field", ""))
        if spec is not None and spec.operator(operator) is None:
            allowed = ", ".join(op.key for op in spec.operators)
            raise PydanticCustomError(
                "unknown_operator",
                f"Unknown operator '{operator}' for {spec.key} ({spec.type}). "
                f"Use one of: {allowed}",
            )
        return operator

    @field_validator("value", mode="plain")
    @classmethod
    def _typed_value(cls, raw: object, info: ValidationInfo) -> Any:
        spec = field_spec(info.data.get("field", ""))
        operator = spec.operator(info.data.get("operator", "")) if spec else None
        if spec is None or operator is None:
            # The field or operator already failed; a value error would only add noise.
            return raw
        return validate_value(spec, operator, raw)

    @property
    def spec(self) -> FieldSpec:
        spec = field_spec(self.field)
        assert spec is not None  # validated on construction
        return spec

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "operator": self.operator}
        if self.value is not None:
            data["value"] = _json_value(self.value)
        return data


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _node_kind(raw: Any) -> str:
    if isinstance(raw, RuleGroup) or (isinstance(raw, dict) and _looks_like_group(raw)):
        return "group"
    return "condition"


def _looks_like_group(raw: dict[Any, Any]) -> bool:
    return "conditions" in raw or "match" in raw


Node = Annotated[
    Union[Annotated["RuleGroup", Tag("group")], Annotated[Condition, Tag("condition")]],  # noqa: UP007
    Discriminator(_node_kind),
]


class RuleGroup(BaseModel):
    """`match` all or any of `conditions` (conditions and nested groups). Empty matches all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: Literal["all", "any"]
    conditions: list[Node] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form: what services store and builders reload."""
        return {"match": self.match, "conditions": [node.to_dict() for node in self.conditions]}

    def walk(self) -> Iterator["Condition"]:
        """Every condition in the tree, depth first."""
        for node in self.conditions:
            if isinstance(node, RuleGroup):
                yield from node.walk()
            else:
                yield node

    @property
    def is_empty(self) -> bool:
        return not self.conditions


RuleGroup.model_rebuild()


# --- Parsing ---------------------------------------------------------------------------------


Loc = tuple[int | str, ...]


class RuleError(TypedDict):
    """One problem: where it is in the tree, as parts (`("conditions", 0, "value")`) and as
    text (`conditions[0].value`, what builders match rows by), and what is wrong, for people."""

    loc: Loc
    path: str
    message: str


def format_path(parts: Loc | list[int | str]) -> str:
    """('conditions', 1, 'operator') -> 'conditions[1].operator'."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def rule_error(loc: Loc, message: str) -> RuleError:
    return {"loc": loc, "path": format_path(loc), "message": message}


class RuleValidationError(ValueError):
    """Rules that cannot be used; `errors` lists each problem (`RuleError`)."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{error['path'] or 'rules'}: {error['message']}" for error in errors)
        )

    def by_path(self) -> list[dict[str, str]]:
        """`{"path", "message"}` per problem: what a builder shows under the row at `path`."""
        return [{"path": error["path"], "message": error["message"]} for error in self.errors]


def _check_shape(data: object) -> list[RuleError]:
    """The rule-tree budget (core.limits, "Rule trees"), checked on the raw data before any node
    is built: depth, conditions, groups, and list values and text over the whole tree. A total
    that is crossed is reported at the condition that crossed it."""
    errors: list[RuleError] = []
    totals = {"conditions": 0, "groups": 0, "list_items": 0, "text_chars": 0}
    crossed: dict[str, Loc] = {}

    def add_value(value: object, path: tuple[int | str, ...]) -> None:
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            totals["list_items"] += len(value)
        totals["text_chars"] += sum(len(item) for item in items if isinstance(item, str))
        for key, budget in (
            ("list_items", MAX_RULE_TREE_LIST_ITEMS),
            ("text_chars", MAX_RULE_TREE_TEXT_CHARS),
        ):
            if totals[key] > budget and key not in crossed:
                crossed[key] = (*path, "value")

    def visit(node: object, path: tuple[int | str, ...], depth: int) -> None:
        if not isinstance(node, dict) or not _looks_like_group(node):
            totals["conditions"] += 1
            if isinstance(node, dict) and "value" in node:
                add_value(node["value"], path)
            return
        if depth > MAX_RULE_DEPTH:
            errors.append(
                rule_error(path, f"Groups can be nested at most {MAX_RULE_DEPTH} levels deep")
            )
            return
        if depth > 1:
            totals["groups"] += 1
        children = node.get("conditions")
        if isinstance(children, list):
            for index, child in enumerate(children):
                visit(child, (*path, "conditions", index), depth + 1)

    if isinstance(data, dict):
        visit(data, (), 1)
    if totals["conditions"] > MAX_RULE_CONDITIONS:
        errors.append(
            rule_error(
                (),
                f"At most {MAX_RULE_CONDITIONS} conditions are allowed "
                f"(found {totals['conditions']})",
            )
        )
    if totals["groups"] > MAX_RULE_GROUPS:
        errors.append(
            rule_error(
                (), f"At most {MAX_RULE_GROUPS} groups are allowed (found {totals['groups']})"
            )
        )
    if "list_items" in crossed:
        errors.append(
            rule_error(
                crossed["list_items"],
                "Over the rule-tree budget: at most "
                f"{MAX_RULE_TREE_LIST_ITEMS:,} list values in all conditions together "
                f"(found {totals['list_items']:,})",
            )
        )
    if "text_chars" in crossed:
        errors.append(
            rule_error(
                crossed["text_chars"],
                "Over the rule-tree budget: at most "
                f"{MAX_RULE_TREE_TEXT_CHARS:,} characters of text values in all conditions "
                f"together (found {totals['text_chars']:,})",
            )
        )
    return errors


def rule_tree_list_items(group: "RuleGroup") -> int:
    """How many list values the tree holds (what its compiled query carries as parameters)."""
    return sum(
        len(condition.value) for condition in group.walk() if isinstance(condition.value, tuple)
    )


def _pydantic_errors(error: ValidationError) -> list[RuleError]:
    errors = []
    for item in error.errors(include_url=False):
        # Drop the union tags ("group"/"condition") that follow a list index in the location.
        parts: list[int | str] = []
        for position, part in enumerate(item["loc"]):
            after_index = position > 0 and isinstance(item["loc"][position - 1], int)
            if after_index and part in ("group", "condition"):
                continue
            parts.append(part)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "Unknown key"
        elif item["type"] == "missing":
            message = "This is required"
        errors.append(rule_error(tuple(parts), message))
    return errors


def parse_rules(data: object) -> RuleGroup:
    """Validate rules (a dict, a JSON string or a RuleGroup) into a typed `RuleGroup`."""
    if isinstance(data, RuleGroup):
        return data
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise RuleValidationError([rule_error((), "Not valid JSON")]) from None
    if not isinstance(data, dict):
        raise RuleValidationError(
            [rule_error((), 'Rules must be an object like {"match": "all", ...}')]
        )
    shape_errors = _check_shape(data)
    if shape_errors:
        raise RuleValidationError(shape_errors)
    try:
        return RuleGroup.model_validate(data)
    except ValidationError as error:
        raise RuleValidationError(_pydantic_errors(error)) from None
