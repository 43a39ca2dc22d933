"""Rules on custom attributes, consent and unsubscription: concrete cases on every database, in
SQL and in the snapshot (the property tests cover random ones)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from minicrm.customers.models import Customer
from minicrm.segments.compiler import customers_matching
from minicrm.segments.describe import rules_describe
from minicrm.segments.rules import RuleValidationError, parse_rules
from minicrm.segments.snapshot import CustomerSnapshot
from tests.factories import CustomerFactory

PEOPLE: dict[str, dict[str, Any]] = {
    "gold": {"plan": "Gold", "score": 7, "vip": True},
    "gold_spaced": {"plan": "gold ", "score": 2.5, "vip": False},
    "silver": {"plan": "silver", "score": "7", "vip": "true"},
    "empty_text": {"plan": "", "score": None},
    "number_plan": {"plan": 7, "score": -3},
    "none": {},
}


@pytest.fixture
def people(db: None) -> dict[int, str]:
    for key, attributes in PEOPLE.items():
        CustomerFactory(external_id=key, attributes=attributes)
    return dict(Customer.objects.values_list("pk", "external_id"))


def select(field: str, operator: str, value: Any = None) -> set[str]:
    condition = {"field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    group = parse_rules({"match": "all", "conditions": [condition]})
    found = set(customers_matching(group).values_list("external_id", flat=True))
    snapshot = CustomerSnapshot()
    snapshot.load()
    keys = dict(Customer.objects.values_list("pk", "external_id"))
    assert {keys[pk] for pk in snapshot.matching_ids(group, today=datetime.now(UTC).date())} == (
        found
    ), (field, operator, value)
    return found


EVERYONE = set(PEOPLE)


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", "GOLD", {"gold"}),  # case ignored, trailing space kept (MariaDB pads "=")
        ("ne", "gold", EVERYONE - {"gold"}),
        ("contains", "OL", {"gold", "gold_spaced"}),
        ("not_contains", "ol", {"silver", "empty_text", "number_plan", "none"}),
        ("starts_with", "gold ", {"gold_spaced"}),
        ("in", ["gold", "SILVER"], {"gold", "silver"}),
        ("not_in", ["gold", "SILVER"], {"gold_spaced", "empty_text", "number_plan", "none"}),
        ("is_empty", None, {"empty_text", "none"}),
        ("is_not_empty", None, {"gold", "gold_spaced", "silver", "number_plan"}),
        ("eq", 7, {"number_plan"}),  # a number compares as a number, never as text
        ("eq", "7", set()),
    ],
)
def test_text_attributes(people: None, operator: str, value: Any, expected: set[str]) -> None:
    assert select("attributes.plan", operator, value) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gt", 2.5, {"gold"}),
        ("gte", 2.5, {"gold", "gold_spaced"}),
        ("lt", 0, {"number_plan"}),
        ("between", [-3, 2.5], {"gold_spaced", "number_plan"}),
        ("eq", 7, {"gold"}),  # "7" is text, not the number 7
        ("ne", 7, EVERYONE - {"gold"}),
        ("is_empty", None, {"empty_text", "none"}),
    ],
)
def test_number_attributes(people: None, operator: str, value: Any, expected: set[str]) -> None:
    assert select("attributes.score", operator, value) == expected


def test_true_false_attributes_are_complements(people: None) -> None:
    assert select("attributes.vip", "is_true") == {"gold"}  # "true" the text is not true
    assert select("attributes.vip", "is_false") == EVERYONE - {"gold"}


@pytest.mark.django_db
def test_consent_and_unsubscribed() -> None:
    CustomerFactory(external_id="yes", marketing_consent=True)
    CustomerFactory(external_id="no", marketing_consent=False)
    CustomerFactory(external_id="gone", unsubscribed_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert select("marketing_consent", "is_true") == {"yes", "gone"}
    assert select("marketing_consent", "is_false") == {"no"}
    assert select("unsubscribed", "is_true") == {"gone"}
    assert select("unsubscribed", "is_false") == {"yes", "no"}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("attributes.a$b", "Attribute key 'a$b' is not valid"),
        ("attributes.", "Attribute key '' is not valid"),
        ("attributes." + "k" * 65, "is not valid"),
        ("attribute.plan", "Unknown field"),
    ],
)
def test_attribute_keys_are_checked(field: str, message: str) -> None:
    with pytest.raises(RuleValidationError, match=r"conditions\[0\]\.field") as error:
        parse_rules({"match": "all", "conditions": [{"field": field, "operator": "is_empty"}]})
    assert message in str(error.value)


def test_attribute_values_are_checked() -> None:
    bad = [
        ("gt", "many", "conditions[0].value: must be a number"),
        ("eq", True, "conditions[0].value: must be text"),
        ("between", [1, 1e30], "conditions[0].value: high value"),
        ("is_true", 1, "takes no value"),
    ]
    for operator, value, message in bad:
        condition = {"field": "attributes.score", "operator": operator, "value": value}
        with pytest.raises(RuleValidationError) as error:
            parse_rules({"match": "all", "conditions": [condition]})
        assert message in str(error.value), (operator, value)


def test_the_rule_in_words_says_where_empty_values_go() -> None:
    def words(field: str, operator: str, value: Any = None) -> str:
        condition = {"field": field, "operator": operator, "value": value}
        return rules_describe(parse_rules({"match": "all", "conditions": [condition]}))

    assert words("city", "ne", "Pune") == 'City is not "Pune" (including customers with no city)'
    assert words("city", "not_in", ["Pune"]) == (
        "City is none of Pune (including customers with no city)"
    )
    assert words("attributes.plan", "not_contains", "gold") == (
        'Plan does not contain "gold" (including customers with no plan)'
    )
    assert words("attributes.score", "gte", 2.5) == "Score at least 2.5"
    assert words("attributes.vip", "is_false") == "Vip is no (including customers without it)"
    assert words("unsubscribed", "is_false") == "Not unsubscribed"


def test_a_bad_attribute_key_is_a_422_naming_the_field(api_client: Client) -> None:
    rules = {"match": "all", "conditions": [{"field": "attributes.x;y", "operator": "is_empty"}]}
    response = api_client.post(
        "/api/v1/segments/preview", {"rules": rules}, content_type="application/json"
    )
    assert response.status_code == 422
    assert "conditions[0].field" in response.content.decode()
