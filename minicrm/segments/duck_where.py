"""The DuckDB WHERE clause for a rule tree, with the SQL compiler's semantics, over the
columnar snapshot's pre-normalised values (see `snapshot`): money in whole cents, instants in
microseconds since the epoch (UTC), text also in ASCII lower case, city and country also as
integer codes, the most common tags as bits. Every value reaches DuckDB as a parameter.
"""
# ruff: noqa: S608  (SQL here is assembled from fixed fragments; values are always parameters)

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .attribute_sql import json_path
from .compiler import day_start
from .fields import (
    BOOLEAN_FIELDS,
    DATE_COLUMNS,
    TEXT_COLUMNS,
    FieldKind,
    UnsupportedRuleError,
    by_operator,
    column_of,
    field_kind,
    require_operator,
)
from .rules import Condition, RuleGroup, attribute_key

if TYPE_CHECKING:
    from .snapshot import CustomerSnapshot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Low-cardinality text (city, country) is also held as integer codes of its lower-case form,
# so a text condition becomes `code IN (...)`: the codes are found in Python over the distinct
# values. Past this many matching values the plain string comparison is used instead.
MAX_CODES_PER_CONDITION = 1_000
BIGINT_SAFE = 2**62
CODED_TEXT = ("city", "country")
COMPILER = "DuckDB"
TEXT_OPERATORS = (
    "eq",
    "ne",
    "contains",
    "not_contains",
    "starts_with",
    "in",
    "not_in",
    "is_empty",
    "is_not_empty",
)


def ascii_lower(text: str) -> str:
    return text.translate(ASCII_LOWER)


def micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // timedelta(microseconds=1)


def cents(amount: Decimal | float | int) -> int:
    # Stats hold whole cents; rounding also absorbs SQLite's binary-float noise.
    return int((Decimal(str(amount)) * 100).to_integral_value())


class Where:
    """Builds one DuckDB WHERE clause with the compiler's semantics; values go to `params`."""

    def __init__(self, today: date, snapshot: "CustomerSnapshot") -> None:
        self.today = today
        self.snapshot = snapshot
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def group(self, group: RuleGroup) -> str | None:
        """SQL for the group, or None for "every customer" (an empty group)."""
        mark = len(self.params)
        parts: list[str] = []
        for node in group.conditions:
            sql = self.group(node) if isinstance(node, RuleGroup) else self.condition(node)
            if sql is None:
                if group.match == "any":
                    del self.params[mark:]  # the SQL built so far is dropped, so its values too
                    return None
                continue
            parts.append(sql)
        if not parts:
            return None
        return "(" + (" AND " if group.match == "all" else " OR ").join(parts) + ")"

    def condition(self, condition: Condition) -> str:
        handlers: dict[FieldKind, Callable[[Condition], str]] = {
            "money": self._money,
            "count": self._count,
            "average": self._average,
            "date": self._date,
            "days_since": self._days_since,
            "text": self._text,
            "tags": self._tags,
            "boolean": self._boolean,
            "attribute": self._attribute,
        }
        return handlers[field_kind(condition, compiler=COMPILER)](condition)

    def _pick(self, choices: dict[str, Any], condition: Condition) -> Any:
        return by_operator(choices, condition, compiler=COMPILER)

    def _boolean(self, condition: Condition) -> str:
        if condition.field not in BOOLEAN_FIELDS:
            raise UnsupportedRuleError(COMPILER, condition, what="field")
        # The snapshot's boolean columns are named as the fields.
        wanted = require_operator(condition, ("is_true", "is_false"), compiler=COMPILER)
        return condition.field if wanted == "is_true" else f"NOT {condition.field}"

    def _compare(self, column: str, condition: Condition, value: Any) -> str:
        if condition.operator == "between":
            return f"({column} BETWEEN {self.p(value[0])} AND {self.p(value[1])})"
        symbols = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        symbol = self._pick(symbols, condition)
        return f"{column} {symbol} {self.p(value)}"

    def _money(self, condition: Condition) -> str:
        value = condition.value
        whole = tuple(cents(v) for v in value) if condition.operator == "between" else cents(value)
        return self._compare("cents", condition, whole)

    def _count(self, condition: Condition) -> str:
        return self._compare("order_count", condition, condition.value)

    def _aov_at_least(self, target: int) -> str:
        # round_half_even(cents / n) >= x, in whole numbers (see compiler._aov_at_least).
        if target <= 0:
            return "(order_count > 0)"
        sign = ">=" if target % 2 == 0 else ">"
        factor = 2 * target - 1
        limit = self.p(factor)
        if factor * max(self.snapshot.max_order_count, 1) < BIGINT_SAFE:
            return f"(order_count > 0 AND 2 * cents {sign} order_count * {limit})"
        return f"(order_count > 0 AND 2 * cents::HUGEINT {sign} order_count * {limit}::HUGEINT)"

    def _aov_below(self, target: int) -> str:
        return f"(order_count > 0 AND NOT {self._aov_at_least(target)})"

    def _average(self, condition: Condition) -> str:
        op, value = condition.operator, condition.value
        if op == "between":
            low, high = cents(value[0]), cents(value[1])
            return f"({self._aov_at_least(low)} AND {self._aov_below(high + 1)})"
        x = cents(value)
        choices: dict[str, Callable[[], str]] = {
            "gt": lambda: self._aov_at_least(x + 1),
            "gte": lambda: self._aov_at_least(x),
            "lt": lambda: self._aov_below(x),
            "lte": lambda: self._aov_below(x + 1),
            "eq": lambda: f"({self._aov_at_least(x)} AND {self._aov_below(x + 1)})",
            "ne": lambda: (
                f"(order_count > 0 AND NOT ({self._aov_at_least(x)} AND {self._aov_below(x + 1)}))"
            ),
        }
        return str(self._pick(choices, condition)())

    def _start(self, day: date) -> str:
        return self.p(micros(day_start(day)))

    def _on_or_after(self, column: str, day: date) -> str:
        return f"{column} >= {self._start(day)}"

    def _before(self, column: str, day: date) -> str:
        return f"{column} < {self._start(day)}"

    def _days(self, column: str, first: date, last: date) -> str:
        after = self._on_or_after(column, first)
        return f"({after} AND {self._before(column, last + timedelta(days=1))})"

    def _date(self, condition: Condition) -> str:
        column = column_of(DATE_COLUMNS, condition, compiler=COMPILER)
        op, value = condition.operator, condition.value
        if op == "is_empty":
            return f"{column} IS NULL"
        if op == "is_not_empty":
            return f"{column} IS NOT NULL"
        if op == "before":
            return self._before(column, value)
        if op == "after":
            return self._on_or_after(column, value + timedelta(days=1))
        if op == "on":
            return self._days(column, value, value)
        if op == "between":
            return self._days(column, value[0], value[1])
        if op == "in_last_days":
            return self._on_or_after(column, self.today - timedelta(days=value))
        if op == "not_in_last_days":
            return (
                f"({column} IS NULL OR {self._before(column, self.today - timedelta(days=value))})"
            )
        raise UnsupportedRuleError(COMPILER, condition)

    def _days_since(self, condition: Condition) -> str:
        column, op, value = "last_order_at", condition.operator, condition.value

        def day(days: int) -> date:
            return self.today - timedelta(days=days)

        if op == "between":
            return self._days(column, day(value[1]), day(value[0]))
        choices: dict[str, Callable[[], str]] = {
            "eq": lambda: self._days(column, day(value), day(value)),
            "ne": lambda: (
                f"({self._before(column, day(value))} OR "
                f"{self._on_or_after(column, day(value - 1))})"
            ),
            "gt": lambda: self._before(column, day(value)),
            "gte": lambda: self._before(column, day(value - 1)),
            "lt": lambda: self._on_or_after(column, day(value - 1)),
            "lte": lambda: self._on_or_after(column, day(value)),
        }
        return str(self._pick(choices, condition)())

    def _text(self, condition: Condition) -> str:
        column_of(TEXT_COLUMNS, condition, compiler=COMPILER)
        op = require_operator(condition, TEXT_OPERATORS, compiler=COMPILER)
        if op == "is_empty":
            return f"NOT {self._filled(condition.field)}"
        if op == "is_not_empty":
            return self._filled(condition.field)
        positive = self._coded(condition) if condition.field in CODED_TEXT else None
        if positive is None:
            positive = self._text_compare(condition)
        # A negation is the complement of its positive (an empty text included).
        return f"(NOT {positive})" if op in ("ne", "not_contains", "not_in") else positive

    def _filled(self, field: str) -> str:
        """The text is not empty (by its code when it has one: cheaper than a string test)."""
        if field not in CODED_TEXT:
            return f"({field}_lc <> '')"
        empty = self.snapshot.codes[field].get("")
        return "TRUE" if empty is None else f"({field}_code <> {self.p(empty)})"

    def _coded(self, condition: Condition) -> str | None:
        """The positive test as `code IN (...)` over the distinct values, or None if too many."""
        op, value = condition.operator, condition.value
        codes = self.snapshot.codes[condition.field]
        if op in ("in", "not_in"):
            wanted = {ascii_lower(item) for item in value}
            matching = [code for text in wanted if (code := codes.get(text)) is not None]
        elif op in ("eq", "ne"):
            code = codes.get(ascii_lower(value))
            matching = [] if code is None else [code]
        else:
            target = ascii_lower(value)
            test = str.startswith if op == "starts_with" else str.__contains__
            matching = [code for text, code in codes.items() if text and test(text, target)]
        if len(matching) > MAX_CODES_PER_CONDITION:
            return None
        if not matching:
            return "FALSE"
        return f"{condition.field}_code IN ({', '.join(self.p(code) for code in matching)})"

    def _text_compare(self, condition: Condition) -> str:
        column, op, value = f"{condition.field}_lc", condition.operator, condition.value
        if op in ("in", "not_in"):
            marks = ", ".join(self.p(ascii_lower(item)) for item in dict.fromkeys(value))
            return f"{column} IN ({marks})"
        target = self.p(ascii_lower(value))
        if op in ("eq", "ne"):
            return f"{column} = {target}"
        if op in ("contains", "not_contains"):
            return f"(instr({column}, {target}) > 0)"  # instr: about twice contains' speed
        if op == "starts_with":
            return f"starts_with({column}, {target})"
        raise UnsupportedRuleError(COMPILER, condition)

    def _tags(self, condition: Condition) -> str:
        operator = require_operator(
            condition, ("has_any", "has_all", "has_none"), compiler=COMPILER
        )
        names = list(dict.fromkeys(name.lower() for name in condition.value))
        bits, known = self.snapshot.tag_bits, self.snapshot.tag_names
        if all(name in bits or name not in known for name in names):
            # A tag nobody has matches nobody: it adds nothing to any/none and fails all.
            mask = sum(1 << bits[name] for name in names if name in bits)
            if operator == "has_all" and any(name not in bits for name in names):
                return "FALSE"
            if operator == "has_all":
                return f"(tag_bits & {self.p(mask)}) = {self.p(mask)}"
            test = "<>" if operator == "has_any" else "="
            return f"(tag_bits & {self.p(mask)}) {test} 0"

        def having(*wanted: str) -> str:
            marks = ", ".join(self.p(name) for name in wanted)
            return f"id IN (SELECT customer_id FROM tags WHERE name IN ({marks}))"

        if operator == "has_any":
            return having(*names)
        if operator == "has_none":
            return f"NOT {having(*names)}"
        # One subquery whatever the number of names (as the SQL compiler does).
        marks = ", ".join(self.p(name) for name in names)
        return (
            f"id IN (SELECT customer_id FROM tags WHERE name IN ({marks}) "
            f"GROUP BY customer_id HAVING COUNT(DISTINCT name) = {self.p(len(names))})"
        )

    # --- Custom attributes (the `attributes` JSON text; see attribute_sql for the semantics) --

    def _attribute_kind(self, key: str) -> str:
        return f"json_type(attributes, {self.p(json_path(key))})"

    def _attribute_text(self, key: str) -> str:
        kind = self._attribute_kind(key)
        value = f"json_extract_string(attributes, {self.p(json_path(key))})"
        return f"(CASE WHEN {kind} = 'VARCHAR' THEN lower({value}) ELSE '' END)"

    def _attribute_number(self, key: str) -> str:
        kind = self._attribute_kind(key)
        value = f"json_extract_string(attributes, {self.p(json_path(key))})"
        numbers = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"
        return f"(CASE WHEN {kind} IN {numbers} THEN CAST({value} AS DOUBLE) END)"

    def _attribute(self, condition: Condition) -> str:
        key = attribute_key(condition.field)
        assert key is not None
        op, value = condition.operator, condition.value
        if op in ("is_true", "is_false"):
            kind = self._attribute_kind(key)
            value_sql = f"json_extract_string(attributes, {self.p(json_path(key))})"
            true = f"COALESCE({kind} = 'BOOLEAN' AND {value_sql} = 'true', FALSE)"
            return f"({true})" if op == "is_true" else f"(NOT {true})"
        if op in ("is_empty", "is_not_empty"):
            kinds = [self._attribute_kind(key) for _ in range(3)]
            value_sql = f"json_extract_string(attributes, {self.p(json_path(key))})"
            empty = (
                f"({kinds[0]} IS NULL OR {kinds[1]} = 'NULL' "
                f"OR ({kinds[2]} = 'VARCHAR' AND length({value_sql}) = 0))"
            )
            # json_type is NULL for a missing key: the empty test is TRUE or FALSE, never NULL.
            return empty if op == "is_empty" else f"(NOT {empty})"
        numeric = op in ("gt", "gte", "lt", "lte", "between") or (
            op in ("eq", "ne") and isinstance(value, Decimal)
        )
        if numeric:
            number = self._attribute_number(key)
            if op == "between":
                low, high = (float(bound) for bound in value)
                return f"({number} BETWEEN {self.p(low)} AND {self.p(high)})"
            if op == "ne":
                return f"(COALESCE({number} = {self.p(float(value))}, FALSE) = FALSE)"
            symbol = self._pick(
                {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}, condition
            )
            return f"COALESCE({number} {symbol} {self.p(float(value))}, FALSE)"
        text = self._attribute_text(key)
        if op in ("in", "not_in"):
            marks = ", ".join(self.p(item.lower()) for item in dict.fromkeys(value))
            positive = f"{text} IN ({marks})"
        elif op in ("eq", "ne"):
            positive = f"{text} = {self.p(value.lower())}"
        elif op in ("contains", "not_contains"):
            positive = f"(instr({text}, {self.p(value.lower())}) > 0)"
        elif op == "starts_with":
            positive = f"starts_with({text}, {self.p(value.lower())})"
        else:
            raise UnsupportedRuleError(COMPILER, condition)
        return f"(NOT {positive})" if op in ("ne", "not_contains", "not_in") else positive
