"""Compile a typed rule tree into one `Q` over the customer table (DESIGN.md, "Segment rules").

The compiler is pure: it reads no data, only `settings.TIME_ZONE` and the date of "today".
Every field maps through an explicit whitelist onto the customer's stats columns (or onto
`CustomerTag` through `Exists`), and every value reaches SQL as a query parameter.

Semantics, kept identical to the reference evaluator in the tests:

- Groups: `all` is AND, `any` is OR; an empty group matches every customer (so an `any`
  group holding an empty group matches everyone too). It compiles to an always-true
  condition, usable wherever a condition is (filter, `When`, `Count(filter=...)`).
- Empty values. A customer who never ordered has no last/first order date, no average order
  value and no days since last order; a customer may have no sign-up date. These empty stats
  and dates match only `is_empty` and, for dates, `not_in_last_days`; every other comparison
  is false for them.
- Negations are complements: an empty text is `""` and compares as one, so `ne`, `not_in`
  and `not_contains` are exactly NOT their positive (a marketer splitting "Pune" / "not Pune"
  loses nobody; rule values are never empty, so "" never equals, contains or is in them).
  A customer with no tags has none of any tags, so `has_none` matches them.
- Money is compared on the cent grid: the stats columns hold whole cents, so
  `total_spend > 5000` is `total_spend >= 5000.005`. The half-cent margin keeps results exact
  on SQLite, which stores decimals as binary floats, and is exact arithmetic elsewhere.
- `avg_order_value` is `total_spend / order_count` rounded half-even to the cent, as the
  customer page shows it. Comparisons are rewritten to whole-number cross-multiplication
  (`round(total * 200) >= (2x - 1) * order_count`), so no division or float rounding happens
  in SQL.
- Dates are calendar days in the configured time zone: a date condition on a datetime
  column compares against the bounds of that day in the zone (`on 2025-03-01` is
  `start(2025-03-01) <= column < start(2025-03-02)`). `in_last_days N` means on or after
  `today - N`; `days_since_last_order` is `today - local date of the last order`, in whole
  days. Both are rewritten into index-friendly range comparisons on the column.
- Text and tags ignore case (ASCII case on every database; beyond ASCII it follows the
  database). `between` is inclusive at both ends.
- Size: a list compiles to one `IN (...)` (never an OR chain), and every condition appears
  once in the SQL, so the query grows linearly with the rule tree, which the parser bounds
  (core.limits, "Rule trees").
"""

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, DecimalField, F, Q, QuerySet, Value
from django.db.models.functions import Length, Lower, Round
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IExact,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Lookup,
)
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from minicrm.customers.models import Customer, CustomerTag

from .attribute_sql import AttributeValue
from .fields import (
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

HALF_CENT = Decimal("0.005")
# Large enough for (2 * cents - 1) of the largest money value a rule accepts.
WHOLE_NUMBER: DecimalField[Decimal, Decimal] = DecimalField(max_digits=30, decimal_places=0)

COMPILER = "SQL"
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# "Every customer": the primary key is never null. Unlike Q(), which Django drops from an OR and
# refuses in When(), this is a condition like any other, and databases see through it.
EVERYONE = Q(pk__isnull=False)


def today_in_zone() -> date:
    """Today's date in the configured time zone (settings.TIME_ZONE)."""
    return datetime.now(timezone.get_default_timezone()).date()


def day_start(day: date) -> datetime:
    """The first instant of `day` in the configured time zone."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def compile_rules(group: RuleGroup, *, today: date | None = None) -> Q:
    """The `Q` that selects exactly the customers `group` describes (never an empty `Q`: rules
    that match everyone compile to `EVERYONE`)."""
    compiled = _compile_group(group, today or today_in_zone())
    return EVERYONE if compiled is None else compiled


def customers_matching(rules: RuleGroup, *, today: date | None = None) -> QuerySet[Customer]:
    """The customers the rules select; rules that match everyone filter nothing (no WHERE)."""
    compiled = _compile_group(rules, today or today_in_zone())
    return Customer.objects.all() if compiled is None else Customer.objects.filter(compiled)


def compile_condition(condition: Condition, *, today: date | None = None) -> Q:
    """One condition on its own (used for funnels, where conditions are added one by one)."""
    return _compile_condition(condition, today or today_in_zone())


# --- Groups ----------------------------------------------------------------------------------
# A compiled node is a Q, or None for "every customer" (an empty group): Q() cannot stand for
# that, because Django drops an empty Q from an OR instead of making the OR always true. The
# public functions turn None into EVERYONE (or into no filter at all).


def _compile_group(group: RuleGroup, today: date) -> Q | None:
    parts: list[Q] = []
    for node in group.conditions:
        compiled = (
            _compile_group(node, today)
            if isinstance(node, RuleGroup)
            else _compile_condition(node, today)
        )
        if compiled is None:
            if group.match == "any":
                return None
            continue
        parts.append(compiled)
    if not parts:
        return None
    result = parts[0]
    for part in parts[1:]:
        result = result & part if group.match == "all" else result | part
    return result


def _compile_condition(condition: Condition, today: date) -> Q:
    compile_kind = KIND_COMPILERS[field_kind(condition, compiler=COMPILER)]
    return compile_kind(condition, today)


def _pick(choices: dict[str, Any], condition: Condition) -> Any:
    return by_operator(choices, condition, compiler=COMPILER)


# --- Money and counts ------------------------------------------------------------------------


def _total_spend(condition: Condition, today: date) -> Q:
    op, value = condition.operator, condition.value
    column = "total_spend"
    if op == "between":
        low, high = value
        return Q(**{f"{column}__gte": low - HALF_CENT, f"{column}__lt": high + HALF_CENT})
    below = Q(**{f"{column}__lt": value - HALF_CENT})
    above = Q(**{f"{column}__gte": value + HALF_CENT})
    comparisons = {
        "gt": above,
        "gte": Q(**{f"{column}__gte": value - HALF_CENT}),
        "lt": below,
        "lte": Q(**{f"{column}__lt": value + HALF_CENT}),
        "eq": Q(**{f"{column}__gte": value - HALF_CENT, f"{column}__lt": value + HALF_CENT}),
        "ne": below | above,
    }
    return _pick(comparisons, condition)


def _order_count(condition: Condition, today: date) -> Q:
    op, value = condition.operator, condition.value
    if op == "between":
        low, high = value
        return Q(order_count__gte=low, order_count__lte=high)
    if op == "ne":
        return ~Q(order_count=value)
    lookup = _pick({"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}, condition)
    return Q(**{f"order_count__{lookup}": value})


def _aov_at_least(cents: int) -> Q:
    """Average order value, rounded half-even to the cent, is at least `cents`.

    With T = total in cents and n orders, round(T / n) >= x holds when T / n > x - 1/2, or
    when T / n == x - 1/2 and the tie rounds up to x, which half-even does when x is even.
    Doubling gives whole numbers: 2T > (2x - 1) n, or 2T >= (2x - 1) n for even x.
    """
    if cents <= 0:
        return Q(order_count__gt=0)
    doubled_total = Round(F("total_spend") * Value(200))
    threshold = F("order_count") * Value(Decimal(2 * cents - 1), output_field=WHOLE_NUMBER)
    compare = GreaterThanOrEqual if cents % 2 == 0 else GreaterThan
    return Q(order_count__gt=0) & Q(compare(doubled_total, threshold))


def _aov_below(cents: int) -> Q:
    return Q(order_count__gt=0) & ~_aov_at_least(cents)


def _avg_order_value(condition: Condition, today: date) -> Q:
    op, value = condition.operator, condition.value
    if op == "between":
        low, high = (int(bound * 100) for bound in value)
        return _aov_at_least(low) & _aov_below(high + 1)
    cents = int(value * 100)
    exactly = _aov_at_least(cents) & _aov_below(cents + 1)
    comparisons = {
        "gt": lambda: _aov_at_least(cents + 1),
        "gte": lambda: _aov_at_least(cents),
        "lt": lambda: _aov_below(cents),
        "lte": lambda: _aov_below(cents + 1),
        "eq": lambda: exactly,
        "ne": lambda: Q(order_count__gt=0) & ~exactly,
    }
    return _pick(comparisons, condition)()


# --- Dates -----------------------------------------------------------------------------------


def _on_or_after(column: str, day: date) -> Q:
    return Q(**{f"{column}__gte": day_start(day)})


def _before(column: str, day: date) -> Q:
    return Q(**{f"{column}__lt": day_start(day)})


def _days_between(column: str, first: date, last: date) -> Q:
    return _on_or_after(column, first) & _before(column, last + timedelta(days=1))


def _date_field(condition: Condition, today: date) -> Q:
    column = column_of(DATE_COLUMNS, condition, compiler=COMPILER)
    op, value = condition.operator, condition.value
    if op == "is_empty":
        return Q(**{f"{column}__isnull": True})
    if op == "is_not_empty":
        return Q(**{f"{column}__isnull": False})
    if op == "before":
        return _before(column, value)
    if op == "after":
        return _on_or_after(column, value + timedelta(days=1))
    if op == "on":
        return _days_between(column, value, value)
    if op == "between":
        return _days_between(column, value[0], value[1])
    if op == "in_last_days":
        return _on_or_after(column, today - timedelta(days=value))
    if op == "not_in_last_days":
        # Includes the empty value: "no order in the last N days" includes those who never
        # ordered.
        return _before(column, today - timedelta(days=value)) | Q(**{f"{column}__isnull": True})
    raise UnsupportedRuleError(COMPILER, condition)


def _days_since_last_order(condition: Condition, today: date) -> Q:
    # days = today - d, so days op N becomes a comparison of d with the day `today - N`.
    column = "last_order_at"
    op, value = condition.operator, condition.value

    def day(days: int) -> date:
        return today - timedelta(days=days)

    if op == "between":
        low, high = value
        return _days_between(column, day(high), day(low))
    comparisons = {
        "eq": lambda: _days_between(column, day(value), day(value)),
        "ne": lambda: _before(column, day(value)) | _on_or_after(column, day(value - 1)),
        "gt": lambda: _before(column, day(value)),
        "gte": lambda: _before(column, day(value - 1)),
        "lt": lambda: _on_or_after(column, day(value - 1)),
        "lte": lambda: _on_or_after(column, day(value)),
    }
    return _pick(comparisons, condition)()


# --- Text and tags ---------------------------------------------------------------------------


def _text_field(condition: Condition, today: date) -> Q:
    column = column_of(TEXT_COLUMNS, condition, compiler=COMPILER)
    op, value = condition.operator, condition.value
    # Length, not `= ''`: MySQL's PAD SPACE collations treat "  " as equal to "".
    empty = Q(Exact(Length(column), 0))
    if op == "is_empty":
        return empty
    if op == "is_not_empty":
        return ~empty
    if op == "eq":
        return Q(**{f"{column}__iexact": value})
    if op == "ne":
        return ~Q(**{f"{column}__iexact": value})
    if op == "contains":
        return Q(**{f"{column}__icontains": value})
    if op == "not_contains":
        return ~Q(**{f"{column}__icontains": value})
    if op == "starts_with":
        return Q(**{f"{column}__istartswith": value})
    require_operator(condition, ("in", "not_in"), compiler=COMPILER)
    any_of = Q(TextIn(F(column), tuple(dict.fromkeys(value))))
    return any_of if op == "in" else ~any_of


def ascii_upper(text: str) -> str:
    return text.translate(ASCII_UPPER)


class TextIn(Lookup):
    """The text column equals one of the values ignoring case, as `iexact` compares them, in one
    `IN` whatever the number of values (an OR chain of `iexact` grows a query, and its planning,
    with every value).

    - SQLite: `UPPER(column) IN (...)` over values upper-cased here in ASCII, exactly the
      folding of SQLite's UPPER (and of its LIKE, which `iexact` uses).
    - PostgreSQL: one array parameter, upper-cased by the database as `iexact` does
      (`UPPER(column) = UPPER(value)`), in a subquery PostgreSQL hashes once.
    - MariaDB/MySQL: the column's collation ignores case, but `=` and `IN` pad spaces there
      ("a" = "a "), unlike the `LIKE` of `iexact`; a suffix on both sides makes trailing spaces
      count.
    """

    lookup_name = "text_in"
    prepare_rhs = False
    SUFFIX = "|"

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        column, params = self.process_lhs(compiler, connection)
        values: tuple[str, ...] = self.rhs
        marks = ", ".join(["%s"] * len(values))
        return f"UPPER({column}) IN ({marks})", [*params, *(ascii_upper(v) for v in values)]

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, Any]:
        column, params = self.process_lhs(compiler, connection)
        return (
            f"UPPER({column}::text) IN "  # noqa: S608 (the column's own SQL; values are a parameter)
            "(SELECT UPPER(item) FROM UNNEST(%s::text[]) AS item)",
            [*params, list(self.rhs)],
        )

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        column, params = self.process_lhs(compiler, connection)
        values: tuple[str, ...] = self.rhs
        marks = ", ".join(["%s"] * len(values))
        suffixed = [value + self.SUFFIX for value in values]
        return f"CONCAT({column}, '{self.SUFFIX}') IN ({marks})", [*params, *suffixed]


def _tags(condition: Condition, today: date) -> Q:
    # Uncorrelated subqueries: each database runs one once (a hashed or materialised set of
    # customer ids) instead of probing the tags of every customer. Tag names are unique per
    # customer, so "has all of N" is "has N of them".
    operator = require_operator(condition, ("has_any", "has_none", "has_all"), compiler=COMPILER)
    names = list(dict.fromkeys(name.lower() for name in condition.value))
    tagged = CustomerTag.objects.filter(name__in=names).values("customer_id")
    if operator == "has_any":
        return Q(pk__in=tagged)
    if operator == "has_none":
        return ~Q(pk__in=tagged)
    if len(names) == 1:
        return Q(pk__in=tagged)
    having_all = (
        tagged.order_by().annotate(found=Count("pk")).filter(found=len(names)).values("customer_id")
    )
    return Q(pk__in=having_all)


# --- Consent and unsubscription -------------------------------------------------------------


def _boolean(condition: Condition, today: date) -> Q:
    wanted = require_operator(condition, ("is_true", "is_false"), compiler=COMPILER) == "is_true"
    if condition.field == "unsubscribed":
        return Q(unsubscribed_at__isnull=not wanted)
    if condition.field == "marketing_consent":
        return Q(marketing_consent=wanted)
    raise UnsupportedRuleError(COMPILER, condition, what="field")


# --- Custom attributes -----------------------------------------------------------------------
# See attribute_sql: text is "" unless the value is a JSON string, a number NULL unless it is a
# JSON number, true/false never NULL, so every negation here is the complement of its positive.


def _attribute(condition: Condition, today: date) -> Q:
    key = attribute_key(condition.field)
    assert key is not None
    op, value = condition.operator, condition.value
    if op in ("is_empty", "is_not_empty"):
        return Q(Exact(AttributeValue(key, "empty"), 1 if op == "is_empty" else 0))
    if op in ("is_true", "is_false"):
        return Q(Exact(AttributeValue(key, "true"), 1 if op == "is_true" else 0))
    numeric = op in ("gt", "gte", "lt", "lte", "between") or (
        op in ("eq", "ne") and isinstance(value, Decimal)
    )
    if numeric:
        return _attribute_number(condition, key)
    return _attribute_text(condition, key)


def _attribute_number(condition: Condition, key: str) -> Q:
    op, value = condition.operator, condition.value
    number = AttributeValue(key, "number")
    # "is a number and ...": FALSE rather than NULL for a value that is no number, so that the
    # negation (`ne`, or NOT in the funnel's CASE) is a complement on every database.
    is_number = Q(IsNull(number, False))
    if op == "between":
        low, high = (float(bound) for bound in value)
        return is_number & Q(GreaterThanOrEqual(number, low)) & Q(LessThanOrEqual(number, high))
    lookup = _pick(
        {
            "eq": Exact,
            "ne": Exact,
            "gt": GreaterThan,
            "gte": GreaterThanOrEqual,
            "lt": LessThan,
            "lte": LessThanOrEqual,
        },
        condition,
    )
    compared = is_number & Q(lookup(number, float(value)))
    return ~compared if op == "ne" else compared


def _attribute_text(condition: Condition, key: str) -> Q:
    op, value = condition.operator, condition.value
    # Lowered on both sides: MariaDB's JSON text may carry a binary (case-sensitive) collation.
    text = Lower(AttributeValue(key, "text"))
    if op in ("in", "not_in"):
        any_of = Q(TextIn(text, tuple(dict.fromkeys(item.lower() for item in value))))
        return any_of if op == "in" else ~any_of
    lookups: dict[str, type[Lookup]] = {
        "eq": IExact,
        "ne": IExact,
        "contains": IContains,
        "not_contains": IContains,
        "starts_with": IStartsWith,
    }
    positive = _pick(lookups, condition)(text, value.lower())
    return ~Q(positive) if op in ("ne", "not_contains") else Q(positive)


KIND_COMPILERS: dict[FieldKind, Callable[[Condition, date], Q]] = {
    "money": _total_spend,
    "count": _order_count,
    "average": _avg_order_value,
    "days_since": _days_since_last_order,
    "date": _date_field,
    "text": _text_field,
    "tags": _tags,
    "boolean": _boolean,
    "attribute": _attribute,
}
