"""A plain-Python evaluator of segment rules, written from DESIGN.md alone.

It shares no code with the compiler: it reads the canonical rules JSON and plain customer
records, so the property tests can check that the SQL the compiler builds selects exactly
the customers this evaluator selects.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo


@dataclass
class Person:
    """The fields of a customer that rules can see."""

    key: str
    total_spend: Decimal = Decimal("0")
    order_count: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    signed_up_at: datetime | None = None
    city: str = ""
    country: str = ""
    email: str = ""
    tags: set[str] = field(default_factory=set)
    marketing_consent: bool = True
    unsubscribed: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


class Evaluator:
    def __init__(self, *, today: date, time_zone: str) -> None:
        self.today = today
        self.zone = ZoneInfo(time_zone)

    def matches(self, rules: dict[str, Any], person: Person) -> bool:
        results = [self._node(node, person) for node in rules["conditions"]]
        if not results:
            return True  # an empty group matches every customer
        return all(results) if rules["match"] == "all" else any(results)

    def select(self, rules: dict[str, Any], people: list[Person]) -> set[str]:
        return {person.key for person in people if self.matches(rules, person)}

    def _node(self, node: dict[str, Any], person: Person) -> bool:
        if "conditions" in node:
            return self.matches(node, person)
        return self._condition(node["field"], node["operator"], node.get("value"), person)

    # --- the value of each field for one person (None = empty) -----------------------------

    def _local_day(self, moment: datetime | None) -> date | None:
        return None if moment is None else moment.astimezone(self.zone).date()

    def field_value(self, name: str, person: Person) -> Any:
        if name == "total_spend":
            return person.total_spend
        if name == "order_count":
            return person.order_count
        if name == "avg_order_value":
            if person.order_count == 0:
                return None
            average = person.total_spend / person.order_count
            return average.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        if name == "days_since_last_order":
            last = self._local_day(person.last_order_at)
            return None if last is None else (self.today - last).days
        if name == "last_order_date":
            return self._local_day(person.last_order_at)
        if name == "first_order_date":
            return self._local_day(person.first_order_at)
        if name == "signup_date":
            return self._local_day(person.signed_up_at)
        if name == "tags":
            return person.tags
        return getattr(person, name)

    # --- one condition -----------------------------------------------------------------------

    def _condition(self, name: str, operator: str, raw: Any, person: Person) -> bool:
        if name.startswith("attributes."):
            return self._attribute(operator, raw, person.attributes.get(name[len("attributes.") :]))
        if name in ("marketing_consent", "unsubscribed"):
            return getattr(person, name) == (operator == "is_true")
        value = self.field_value(name, person)
        if name == "tags":
            wanted = {item.lower() for item in raw}
            have = {tag.lower() for tag in value}
            if operator == "has_any":
                return bool(wanted & have)
            if operator == "has_all":
                return wanted <= have
            return not (wanted & have)  # has_none
        if name in ("city", "country", "email"):
            return self._text(operator, raw, value)
        if name in ("last_order_date", "first_order_date", "signup_date"):
            return self._date(operator, raw, value)
        return self._number(operator, raw, value, money=name in ("total_spend", "avg_order_value"))

    def _number(self, operator: str, raw: Any, value: Any, *, money: bool) -> bool:
        if value is None:
            return False

        def typed(item: Any) -> Any:
            return Decimal(str(item)) if money else int(item)

        if operator == "between":
            return typed(raw[0]) <= value <= typed(raw[1])
        target = typed(raw)
        return {
            "eq": value == target,
            "ne": value != target,
            "gt": value > target,
            "gte": value >= target,
            "lt": value < target,
            "lte": value <= target,
        }[operator]

    def _date(self, operator: str, raw: Any, value: date | None) -> bool:
        if operator == "is_empty":
            return value is None
        if operator == "is_not_empty":
            return value is not None
        if operator == "not_in_last_days":
            return value is None or value < self.today - timedelta(days=raw)
        if value is None:
            return False
        if operator == "in_last_days":
            return value >= self.today - timedelta(days=raw)
        if operator == "between":
            return date.fromisoformat(raw[0]) <= value <= date.fromisoformat(raw[1])
        target = date.fromisoformat(raw)
        return {"before": value < target, "after": value > target, "on": value == target}[operator]

    def _text(self, operator: str, raw: Any, value: str) -> bool:
        if operator == "is_empty":
            return value == ""
        if operator == "is_not_empty":
            return value != ""
        # An empty text is "" and compares as one: rule values are never empty, so "" equals,
        # contains, starts with and is in none of them, and every negation matches it.
        text = value.lower()
        if operator in ("in", "not_in"):
            found = text in {item.lower() for item in raw}
            return found if operator == "in" else not found
        target = raw.lower()
        return {
            "eq": text == target,
            "ne": text != target,
            "contains": target in text,
            "not_contains": target not in text,
            "starts_with": text.startswith(target),
        }[operator]

    # --- custom attributes: a value is text, a number or true/false as stored ---------------

    def _attribute(self, operator: str, raw: Any, value: Any) -> bool:
        """DESIGN: an attribute missing, null or "" is empty; text operators see "" for any
        value that is no string, number operators see no number (never equal) for any value
        that is no number, and each negation is the complement of its positive."""
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if operator == "is_empty":
            return value is None or value == ""
        if operator == "is_not_empty":
            return not (value is None or value == "")
        if operator == "is_true":
            return value is True
        if operator == "is_false":
            return value is not True
        numeric = operator in ("gt", "gte", "lt", "lte", "between") or (
            operator in ("eq", "ne") and not isinstance(raw, str)
        )
        if numeric:
            number = float(value) if is_number else None
            if operator == "ne":
                return number is None or number != float(raw)
            if number is None:
                return False
            if operator == "between":
                return float(raw[0]) <= number <= float(raw[1])
            target = float(raw)
            return {
                "eq": number == target,
                "gt": number > target,
                "gte": number >= target,
                "lt": number < target,
                "lte": number <= target,
            }[operator]
        return self._text(operator, raw, value if isinstance(value, str) else "")
