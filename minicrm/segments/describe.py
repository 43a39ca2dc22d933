"""Segment rules in plain words: "Total spend over ₹5,000 and, any of: 3 or more orders, ..."."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from minicrm.core.formatting import money

from .rules import Condition, RuleGroup, attribute_key

# Negations are complements (DESIGN, "Segment rules"): said out loud where the empty values go.
NEGATIONS = ("ne", "not_contains", "not_in")

NUMBER_WORDS = {
    "gt": "over",
    "gte": "at least",
    "lt": "under",
    "lte": "at most",
    "eq": "exactly",
    "ne": "not",
}


def format_money(value: Decimal) -> str:
    # A rule's amount as typed: whole units when it is whole, else to the cent.
    return money(value, 0 if value == value.to_integral_value() else 2)


def format_day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _money_field(label: str) -> Callable[[Condition], str]:
    def describe(condition: Condition) -> str:
        if condition.operator == "between":
            low, high = condition.value
            return f"{label} between {format_money(low)} and {format_money(high)}"
        return f"{label} {NUMBER_WORDS[condition.operator]} {format_money(condition.value)}"

    return describe


def _order_count(condition: Condition) -> str:
    op, value = condition.operator, condition.value
    if op == "between":
        return f"between {value[0]:,} and {value[1]:,} orders"
    return {
        "gt": f"more than {_plural(value, 'order')}",
        "gte": f"{value:,} or more orders",
        "lt": f"fewer than {_plural(value, 'order')}",
        "lte": f"at most {_plural(value, 'order')}",
        "eq": f"exactly {_plural(value, 'order')}",
        "ne": f"not exactly {_plural(value, 'order')}",
    }[op]


def _days_since(condition: Condition) -> str:
    op, value = condition.operator, condition.value
    if op == "between":
        return f"last order between {value[0]:,} and {value[1]:,} days ago"
    words = {
        "gt": "more than",
        "gte": "at least",
        "lt": "less than",
        "lte": "at most",
        "eq": "exactly",
        "ne": "not exactly",
    }[op]
    return f"last order {words} {_plural(value, 'day')} ago"


def _date_field(subject: str, *, recent: str, not_recent: str, never: str, ever: str) -> Any:
    def describe(condition: Condition) -> str:
        op, value = condition.operator, condition.value
        if op == "between":
            return f"{subject} between {format_day(value[0])} and {format_day(value[1])}"
        if op in ("before", "after", "on"):
            return f"{subject} {op} {format_day(value)}"
        if op == "in_last_days":
            return f"{recent} in the last {_plural(value, 'day')}"
        if op == "not_in_last_days":
            return f"{not_recent} in the last {_plural(value, 'day')}"
        return never if op == "is_empty" else ever

    return describe


def _text_field(label: str, *, empty: str | None = None) -> Callable[[Condition], str]:
    """`empty` names those a negation also selects ("customers with no city")."""
    including = f" (including {empty or 'customers with no ' + label.lower()})"

    def describe(condition: Condition) -> str:
        op, value = condition.operator, condition.value
        suffix = including if op in NEGATIONS else ""
        if op in ("in", "not_in"):
            verb = "is one of" if op == "in" else "is none of"
            return f"{label} {verb} {', '.join(value)}{suffix}"
        words = {
            "eq": "is",
            "ne": "is not",
            "contains": "contains",
            "not_contains": "does not contain",
            "starts_with": "starts with",
        }
        if op in words:
            return f'{label} {words[op]} "{value}"{suffix}'
        return f"{label} is empty" if op == "is_empty" else f"{label} is not empty"

    return describe


def _tags(condition: Condition) -> str:
    names = list(condition.value)
    if condition.operator == "has_all":
        return "tagged " + " and ".join(names)
    if condition.operator == "has_any":
        return "tagged " + " or ".join(names)
    return "not tagged " + " or ".join(names)  # customers with no tags plainly included


def _boolean(yes: str, no: str) -> Callable[[Condition], str]:
    return lambda condition: yes if condition.operator == "is_true" else no


def _number_words(value: Decimal) -> str:
    return f"{value:,f}" if value != value.to_integral_value() else f"{int(value):,}"


def _attribute(condition: Condition) -> str:
    """`plan is "gold"`, `score over 3`, `vip is yes`, with the empty values a negation takes."""
    key = attribute_key(condition.field)
    op, value = condition.operator, condition.value
    if op in ("is_true", "is_false"):
        answer = "yes" if op == "is_true" else "no (including customers without it)"
        return f"{key} is {answer}"
    if op in ("is_empty", "is_not_empty"):
        return f"{key} is {'empty' if op == 'is_empty' else 'not empty'}"
    numeric = op in ("gt", "gte", "lt", "lte", "between") or isinstance(value, Decimal)
    if not numeric:
        return _text_field(str(key), empty=f"customers with no {key}")(condition)
    if op == "between":
        return f"{key} between {_number_words(value[0])} and {_number_words(value[1])}"
    if op == "ne":
        return f"{key} is not {_number_words(value)} (including customers with no {key})"
    return f"{key} {NUMBER_WORDS[op]} {_number_words(value)}"


DESCRIBERS: dict[str, Callable[[Condition], str]] = {
    "total_spend": _money_field("Total spend"),
    "avg_order_value": _money_field("Average order value"),
    "order_count": _order_count,
    "days_since_last_order": _days_since,
    "last_order_date": _date_field(
        "last order", recent="ordered", not_recent="no order", never="never ordered", ever="ordered"
    ),
    "first_order_date": _date_field(
        "first order",
        recent="first order",
        not_recent="first order not",
        never="never ordered",
        ever="ordered",
    ),
    "signup_date": _date_field(
        "signed up",
        recent="signed up",
        not_recent="did not sign up",
        never="no sign-up date",
        ever="has a sign-up date",
    ),
    "city": _text_field("City"),
    "country": _text_field("Country"),
    "email": _text_field("Email"),
    "tags": _tags,
    "marketing_consent": _boolean("gave marketing consent", "no marketing consent"),
    "unsubscribed": _boolean("unsubscribed", "not unsubscribed"),
}


def condition_describe(condition: Condition) -> str:
    """One condition in words, e.g. "Total spend over ₹5,000"."""
    describe = _attribute if attribute_key(condition.field) else DESCRIBERS[condition.field]
    text = describe(condition)
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _group_words(group: RuleGroup, *, nested: bool) -> str:
    if not group.conditions:
        return "all customers" if nested else "All customers"
    parts: list[str] = []
    for node in group.conditions:
        if isinstance(node, RuleGroup):
            inner = _group_words(node, nested=True)
            parts.append(f"({inner})" if nested or node is not group.conditions[-1] else inner)
        else:
            parts.append(condition_describe(node))
    if nested:
        lead = "any of: " if group.match == "any" else "all of: "
        return lead + ", ".join(_lower_first(part) for part in parts)
    joiner = " and " if group.match == "all" else " or "
    text = parts[0]
    for node, part in zip(group.conditions[1:], parts[1:], strict=True):
        comma = "," if isinstance(node, RuleGroup) and not part.startswith("(") else ""
        text += f"{joiner.rstrip()}{comma} {_lower_first(part)}"
    return text[:1].upper() + text[1:]


def rules_describe(rules: RuleGroup) -> str:
    """The whole tree in words: top-level conditions joined by "and"/"or", groups as "any of:"."""
    if len(rules.conditions) == 1 and isinstance(rules.conditions[0], RuleGroup):
        return rules_describe(rules.conditions[0])
    return _group_words(rules, nested=False)
