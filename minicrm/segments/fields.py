"""The one whitelist of rule fields the compilers translate (`compiler` to SQL, `duck_where` to
DuckDB): each field's kind of comparison and the customer column it reads. A field or operator
a compiler has no translation for raises `UnsupportedRuleError`, never a guess.
"""

from collections.abc import Mapping
from typing import Literal, TypeVar

from .rules import Condition, attribute_key

FieldKind = Literal[
    "money", "count", "average", "date", "days_since", "text", "tags", "boolean", "attribute"
]

# Rule field -> how it compares. Every field of `rules.FIELDS` is here (the compiler tests
# check it), and `attributes.<key>` fields are "attribute".
FIELD_KINDS: dict[str, FieldKind] = {
    "total_spend": "money",
    "order_count": "count",
    "avg_order_value": "average",
    "last_order_date": "date",
    "days_since_last_order": "days_since",
    "first_order_date": "date",
    "signup_date": "date",
    "city": "text",
    "country": "text",
    "email": "text",
    "tags": "tags",
    "marketing_consent": "boolean",
    "unsubscribed": "boolean",
}
# The customer columns (the snapshot keeps the same names) of the fields that name one.
DATE_COLUMNS = {
    "last_order_date": "last_order_at",
    "first_order_date": "first_order_at",
    "signup_date": "signed_up_at",
}
TEXT_COLUMNS = {"city": "city", "country": "country", "email": "email"}
BOOLEAN_FIELDS = ("marketing_consent", "unsubscribed")

T = TypeVar("T")


class UnsupportedRuleError(NotImplementedError):
    """A field or operator a compiler does not translate: a bug in the compiler (the parser let
    it through), reported instead of compiling into some other comparison."""

    def __init__(self, compiler: str, condition: Condition, *, what: str = "operator") -> None:
        self.field = condition.field
        self.operator = condition.operator
        subject = (
            f"field {condition.field!r}"
            if what == "field"
            else f"operator {condition.operator!r} of field {condition.field!r}"
        )
        super().__init__(f"The {compiler} compiler has no translation for {subject}")


def field_kind(condition: Condition, *, compiler: str) -> FieldKind:
    """How the condition's field compares; raises UnsupportedRuleError for an unknown field."""
    if attribute_key(condition.field) is not None:
        return "attribute"
    kind = FIELD_KINDS.get(condition.field)
    if kind is None:
        raise UnsupportedRuleError(compiler, condition, what="field")
    return kind


def column_of(columns: Mapping[str, str], condition: Condition, *, compiler: str) -> str:
    """The column of the condition's field in `columns`; raises for a field not there."""
    column = columns.get(condition.field)
    if column is None:
        raise UnsupportedRuleError(compiler, condition, what="field")
    return column


def by_operator(choices: Mapping[str, T], condition: Condition, *, compiler: str) -> T:
    """The choice for the condition's operator; raises for an operator not among them."""
    if condition.operator not in choices:
        raise UnsupportedRuleError(compiler, condition)
    return choices[condition.operator]


def require_operator(condition: Condition, operators: tuple[str, ...], *, compiler: str) -> str:
    """The condition's operator, checked to be one of `operators` before any is compiled."""
    if condition.operator not in operators:
        raise UnsupportedRuleError(compiler, condition)
    return condition.operator
