"""Both compilers translate every (field, operator) pair the rule schema allows, and refuse by
name what they do not know, instead of compiling it as some other comparison.

The pairs come from the schema (`rules.FIELDS` and the attribute operators), so a field or
operator added there without compiler support fails here.
"""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from minicrm.customers.models import Customer
from minicrm.segments.compiler import compile_rules
from minicrm.segments.duck_where import Where
from minicrm.segments.fields import FIELD_KINDS, UnsupportedRuleError
from minicrm.segments.rules import (
    ATTRIBUTE_OPERATORS,
    FIELDS,
    Condition,
    FieldSpec,
    OperatorSpec,
    RuleGroup,
    parse_rules,
)

TODAY = date(2025, 6, 15)
ATTRIBUTE = FieldSpec("attributes.plan", "Plan", "attribute", ATTRIBUTE_OPERATORS)
# The snapshot's tables, as far as a WHERE clause reads them (snapshot.SCHEMA).
DUCK_TABLES = """
CREATE TABLE customers (
    id BIGINT, cents BIGINT, order_count BIGINT,
    first_order_at BIGINT, last_order_at BIGINT, signed_up_at BIGINT,
    city_lc VARCHAR, country_lc VARCHAR, email_lc VARCHAR,
    city_code INTEGER, country_code INTEGER, tag_bits BIGINT,
    marketing_consent BOOLEAN, unsubscribed BOOLEAN, attributes VARCHAR
);
CREATE TABLE tags (customer_id BIGINT, name VARCHAR);
"""


def sample_values(spec: FieldSpec, operator: OperatorSpec) -> list[Any]:
    """Values the schema accepts for the pair (both kinds where an attribute's value decides
    between a number and a text comparison)."""
    scalar_by_type = {"money": 50, "integer": 3, "date": "2025-03-01", "attribute": 2.5}
    by_kind: dict[str, list[Any]] = {
        "number": [3],
        "money": [50],
        "decimal": [2.5],
        "days": [30],
        "date": ["2025-03-01"],
        "text": ["pune"],
        "list": [["pune", "vip"]],
        "none": [None],
        "scalar": [2, "gold"],
        "range": [[scalar_by_type.get(spec.type, 1)] * 2],
    }
    return by_kind[operator.value_kind]


SCHEMA_PAIRS = [
    pytest.param(spec, operator, value, id=f"{spec.key}-{operator.key}-{index}")
    for spec in (*FIELDS, ATTRIBUTE)
    for operator in spec.operators
    for index, value in enumerate(sample_values(spec, operator))
]


def one(condition: Condition) -> RuleGroup:
    return RuleGroup(match="all", conditions=[condition])


def stand_in_snapshot(*, tag_bits: dict[str, int]) -> Any:
    """What `Where` reads of a snapshot: the codes of city and country, and the tag bits."""
    return SimpleNamespace(
        codes={"city": {"": 0, "pune": 1}, "country": {"india": 0}},
        tag_bits=tag_bits,
        tag_names=set(tag_bits) | {"rare"},
        max_order_count=10,
    )


def duck_sql(group: RuleGroup, snapshot: Any) -> tuple[str, list[Any]]:
    where = Where(TODAY, snapshot)
    sql = where.group(group)
    return sql or "TRUE", where.params


def test_every_schema_field_has_a_compiled_kind() -> None:
    assert set(FIELD_KINDS) == {spec.key for spec in FIELDS}


@pytest.mark.django_db
@pytest.mark.parametrize(("spec", "operator", "value"), SCHEMA_PAIRS)
def test_every_schema_pair_compiles_and_runs_in_sql(
    spec: FieldSpec, operator: OperatorSpec, value: Any
) -> None:
    condition: dict[str, Any] = {"field": spec.key, "operator": operator.key}
    if value is not None:
        condition["value"] = value
    group = parse_rules({"match": "all", "conditions": [condition]})
    # Run, not only built: the database accepts the SQL (on every database of the CI passes).
    assert Customer.objects.filter(compile_rules(group, today=TODAY)).count() == 0


@pytest.mark.parametrize("tag_bits", [{"pune": 0, "vip": 1}, {}], ids=["bits", "tags-table"])
@pytest.mark.parametrize(("spec", "operator", "value"), SCHEMA_PAIRS)
def test_every_schema_pair_compiles_and_runs_in_duckdb(
    spec: FieldSpec, operator: OperatorSpec, value: Any, tag_bits: dict[str, int]
) -> None:
    condition: dict[str, Any] = {"field": spec.key, "operator": operator.key}
    if value is not None:
        condition["value"] = value
    group = parse_rules({"match": "all", "conditions": [condition]})
    sql, params = duck_sql(group, stand_in_snapshot(tag_bits=tag_bits))
    with duckdb.connect() as duck:
        duck.execute(DUCK_TABLES)
        count = duck.execute(f"SELECT count(*) FROM customers WHERE {sql}", params).fetchone()  # noqa: S608
    assert count == (0,)


# A value of the field's type, so that only the operator is unknown.
TYPED_VALUES: dict[str, Any] = {
    "money": Decimal(50),
    "integer": 3,
    "date": date(2025, 3, 1),
    "tags": ("vip",),
    "boolean": None,
}
UNKNOWN = [
    pytest.param(Condition.model_construct(field="age", operator="gt", value=3), id="field"),
    *(
        pytest.param(
            Condition.model_construct(
                field=spec.key, operator="near", value=TYPED_VALUES.get(spec.type, "x")
            ),
            id=f"{spec.key}-operator",
        )
        for spec in (*FIELDS, ATTRIBUTE)
    ),
    # Operators of other fields: each must be refused, not read as a neighbour's.
    pytest.param(
        Condition.model_construct(field="signup_date", operator="gt", value=3), id="date-gt"
    ),
    pytest.param(
        Condition.model_construct(field="tags", operator="in", value=("a",)), id="tags-in"
    ),
    pytest.param(
        Condition.model_construct(field="city", operator="has_any", value=("a",)),
        id="text-has_any",
    ),
    pytest.param(
        Condition.model_construct(field="attributes.plan", operator="has_all", value="x"),
        id="attribute-has_all",
    ),
]


@pytest.mark.parametrize("condition", UNKNOWN)
def test_an_unknown_field_or_operator_is_refused_by_name_in_sql(condition: Condition) -> None:
    # Built without validation: what a parser bug or a new schema entry would hand over.
    with pytest.raises(UnsupportedRuleError, match="SQL compiler") as error:
        compile_rules(one(condition), today=TODAY)
    assert (error.value.field, error.value.operator) == (condition.field, condition.operator)


@pytest.mark.parametrize("tag_bits", [{"a": 0}, {}], ids=["bits", "tags-table"])
@pytest.mark.parametrize("condition", UNKNOWN)
def test_an_unknown_field_or_operator_is_refused_by_name_in_duckdb(
    condition: Condition, tag_bits: dict[str, int]
) -> None:
    with pytest.raises(UnsupportedRuleError, match="DuckDB compiler") as error:
        duck_sql(one(condition), stand_in_snapshot(tag_bits=tag_bits))
    assert (error.value.field, error.value.operator) == (condition.field, condition.operator)
