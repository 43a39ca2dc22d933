"""The offline provider: no network, no key; the narrator and the built-in text parser."""

from typing import Any

from minicrm.core.formatting import currency_symbol, shop_currency
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.describe import rules_describe
from minicrm.segments.rules import RuleValidationError, parse_rules

from ..audience_text import ParsedText, parse_audience_text
from ..campaign_narrator import campaign_narrate
from ..narrator import narrate, suggest
from .base import CampaignSummaryContent, InsightContent, ParseResult, Provider

EXAMPLES = (
    "“spent over 5000”, “ordered in the last 30 days”, “from Mumbai”, “tagged vip” or"
    " “never ordered”"
)


class OfflineProvider(Provider):
    name = "offline"

    @property
    def model(self) -> str:
        return "rules-v1"

    def insight(self, facts: dict[str, Any]) -> InsightContent:
        return narrate(facts)

    def parse_audience(self, text: str) -> ParseResult:
        parsed = parse_audience_text(text, today=today_in_zone())
        return ParseResult(
            rules=parsed.rules, explanation=explain(parsed), unparsed=list(parsed.unparsed)
        )

    def suggest_messages(self, facts: dict[str, Any], objective: str) -> list[str]:
        return suggest(facts, objective)

    def campaign_summary(self, figures: dict[str, Any]) -> CampaignSummaryContent:
        return campaign_narrate(figures)


def explain(parsed: ParsedText) -> str:
    """What the rules say in words, and what was left out."""
    left_out = ", ".join(f"“{fragment}”" for fragment in parsed.unparsed)
    if not parsed.rules["conditions"]:
        if not left_out:
            return "There was nothing to turn into rules."
        return f"I could not turn {left_out} into rules. Try phrases like {EXAMPLES}."
    try:
        words = rules_describe(parse_rules(parsed.rules))
    except RuleValidationError as error:
        # The service rejects these rules with the reason; the explanation just says so.
        return f"These rules are not valid: {error}"
    sentences = [f"Understood as: {words}."]
    if left_out:
        sentences.append(f"Left out because I could not understand it: {left_out}.")
    sentences.extend(parsed.notes)
    if any(node.get("field") == "total_spend" for node in _conditions(parsed.rules)):
        sentences.append(f"Amounts are in {shop_currency()} ({currency_symbol()}).")
    return " ".join(sentences)


def _conditions(group: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for node in group["conditions"]:
        found.extend(_conditions(node) if "conditions" in node else [node])
    return found
