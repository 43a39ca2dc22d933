"""The offline narrator: contrasting segments read differently, and every number is a fact."""

import copy
import re
from typing import Any

import pytest

from minicrm.customers.models import Customer
from minicrm.insights.content import InsightContent
from minicrm.insights.facts import members_facts, rules_facts
from minicrm.insights.narrator import narrate, objective_theme, suggest
from minicrm.segments.rules import parse_rules

from .conftest import LAPSED, NEW_CUSTOMERS, TODAY

HIGH_SPENDERS = {
    "match": "all",
    "conditions": [{"field": "total_spend", "operator": "gte", "value": 10000}],
}
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def facts_for(rules: dict[str, Any]) -> dict[str, Any]:
    return rules_facts(rules=parse_rules(rules), today=TODAY)


def fact_numbers(facts: Any) -> set[str]:
    """Every way the narrative may write a number that is in the facts."""
    found: set[str] = set()
    if isinstance(facts, dict):
        for value in facts.values():
            found |= fact_numbers(value)
    elif isinstance(facts, list):
        for value in facts:
            found |= fact_numbers(value)
    elif isinstance(facts, str):
        found |= set(NUMBER.findall(facts))
    elif isinstance(facts, int | float) and not isinstance(facts, bool):
        value = float(facts)
        percent = f"{abs(value) * 100:.1f}".removesuffix(".0")
        found |= {str(facts), f"{round(value):,}", f"{value:.1f}", f"{value:.2f}", percent}
    return found


def content_numbers(content: InsightContent) -> list[str]:
    texts = [content.headline, *content.findings, *content.recommendations]
    return [number for text in texts for number in NUMBER.findall(text)]


def test_high_spenders_read_as_valuable(contrasting_base: dict[str, list[Customer]]) -> None:
    content = narrate(facts_for(HIGH_SPENDERS))

    assert content.headline == (
        "16% of customers bring 84.4% of revenue — average spend 5.3\u00d7 the base"
    )
    assert content.findings[0] == (
        "4 customers (16% of all customers) account for ₹80,000 (84.4% of revenue)."
    )
    assert content.recommendations[0].startswith("Treat this group as VIPs")
    assert "best customers" in content.suggested_message


def test_lapsed_customers_read_as_a_risk(contrasting_base: dict[str, list[Customer]]) -> None:
    content = narrate(facts_for(LAPSED))

    assert content.headline == (
        "66.7% of this segment has not ordered in over 180 days — 10 customers to win back"
    )
    assert (
        "66.7% have not ordered in over 180 days (40% of all customers) and 33.3% have never"
        " ordered (20%)." in content.findings
    )
    assert content.recommendations[:3] == [
        "Send a win-back message to the 10 members with no order in over 180 days, and test a"
        " time-limited offer against a plain reminder.",
        "Start with the 66.7% who ordered more than once: they know the products already, so a"
        " reminder may work before any discount.",
        "Give the 5 members who never ordered a reason for a first order: a welcome offer or a"
        " best-sellers guide.",
    ]
    assert "it's been a while" in content.suggested_message


def test_new_customers_read_as_new_with_a_second_order_to_win(
    contrasting_base: dict[str, list[Customer]],
) -> None:
    content = narrate(facts_for(NEW_CUSTOMERS))

    assert content.headline == "100% joined in the last 90 days; 100% have ordered only once so far"
    assert "100% joined in the last 90 days (24% of all customers)." in content.findings
    assert content.recommendations[:2] == [
        "Welcome the 6 recent sign-ups with a short series (best-sellers, how to choose) while"
        " they are still paying attention.",
        "Nudge the 6 one-time buyers towards a second order soon after the first, with a"
        " cross-sell or a replenishment reminder.",
    ]
    assert content.suggested_message.startswith("Welcome aboard, {{ first_name }}!")
    assert (
        "In the last 90 days members placed 6 orders worth ₹4,800, against none in the 90 days"
        " before." in content.findings
    )


@pytest.mark.parametrize("rules", [HIGH_SPENDERS, LAPSED, NEW_CUSTOMERS])
def test_every_number_in_the_content_comes_from_the_facts(
    contrasting_base: dict[str, list[Customer]], rules: dict[str, Any]
) -> None:
    facts = facts_for(rules)

    content = narrate(facts)

    allowed = fact_numbers(facts)
    assert [number for number in content_numbers(content) if number not in allowed] == []
    assert 3 <= len(content.findings) <= 6
    assert 2 <= len(content.recommendations) <= 4
    assert "{{ first_name }}" in content.suggested_message
    assert not NUMBER.search(content.suggested_message)


def test_a_falling_trend_is_the_headline_when_nothing_else_stands_out(
    contrasting_base: dict[str, list[Customer]],
) -> None:
    facts = facts_for({"match": "all", "conditions": []})
    facts = copy.deepcopy(facts)
    facts["segment"]["trend"]["orders_change"] = -0.35

    content = narrate(facts)

    assert content.headline == "Orders from this segment fell 35% in the last 90 days"
    assert any(text.startswith("Orders are down 35%") for text in content.recommendations)


def test_an_empty_segment_says_so(contrasting_base: dict[str, list[Customer]]) -> None:
    facts = facts_for(
        {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Goa"}]}
    )

    content = narrate(facts)

    assert content.headline == "No customers match this segment yet"
    assert content.findings[0] == "The rules match none of the 25 customers."


def test_an_empty_base_says_so(db: None) -> None:
    content = narrate(members_facts(members=Customer.objects.all(), today=TODAY))

    assert content.headline == "No customers yet"
    assert len(content.findings) == 3


def test_suggestions_follow_the_objective_and_carry_its_offer(
    contrasting_base: dict[str, list[Customer]],
) -> None:
    messages = suggest(facts_for(NEW_CUSTOMERS), "Win back lapsed buyers with 10% off")

    assert messages == [
        "Hi {{ first_name }}, it's been a while! A lot has changed since your last order — come"
        " and see what's new, with 10% off.",
        "{{ first_name }}, we miss you. Your favourites are still here, with 10% off. Pop back in"
        " this week?",
        "Hey {{ first_name }}, ready for a fresh start? Here's a little welcome back, with 10%"
        " off.",
    ]


def test_suggestions_without_a_known_theme_follow_the_facts(
    contrasting_base: dict[str, list[Customer]],
) -> None:
    messages = suggest(facts_for(HIGH_SPENDERS), "say hello")

    assert len(messages) == 3
    assert len(set(messages)) == 3
    assert all(len(message) <= 200 and "{{ first_name }}" in message for message in messages)
    assert "best customers" in messages[0]


@pytest.mark.parametrize(
    ("objective", "theme"),
    [
        ("Re-engage inactive customers", "lapsed"),
        ("Welcome our new sign-ups", "new"),
        ("An offer for a first purchase", "never"),
        ("Thank our VIPs", "valuable"),
        ("Cross-sell accessories", "one_order"),
        ("Announce the new collection", "launch"),
        ("Diwali sale", "sale"),
        ("hello", None),
    ],
)
def test_objective_themes(objective: str, theme: str | None) -> None:
    assert objective_theme(objective) == theme
