"""Hypothesis strategies for random customers and random rule trees, rich in edge cases."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from minicrm.core.limits import MAX_RULE_DEPTH
from minicrm.segments.rules import ATTRIBUTE_OPERATORS, FIELDS, FieldSpec

from .reference import Person

# A Sunday on which Europe and the US are not yet both on summer time, near a DST switch.
TODAY = date(2025, 3, 30)

CENTS = [0, 1, 2, 3, 5, 10, 15, 33, 50, 99, 100, 101, 250, 1000, 3333, 9999, 10000, 500000]
CITIES = ["", "Pune", "pune", "PUNE", "Pune ", " Pune", "New Delhi", "new delhi", "50%_off"]
CITIES += ["a_b", "axb", "a\\b", "O'Hara", "Mumbai", "mum"]
TEXT_VALUES = ["Pune", "PUNE", "pune ", "un", "New", "new delhi", "%", "_", "a_b", "\\", "'"]
TEXT_VALUES += ["Mum", "x", "ai", "e D", "@example.com", "A@X.COM", "India", "in"]
COUNTRIES = ["", "India", "india", "INDIA", "USA", "Indiana"]
EMAILS = ["", "a@x.com", "A@X.COM", "b_c@example.com", "bxc@example.com", "ai@example.com"]
TAGS = ["vip", "new", "churn-risk", "b2b"]
TAG_VALUES = ["VIP", "vip", "New", "churn-risk", "x", "B2B"]
# Custom attributes: text, numbers and true/false under a few keys (one with a space), with the
# edge cases a shop's data holds: "", text that looks like a number, null, a list.
ATTRIBUTE_KEYS = ["plan", "score", "vip", "loyalty tier"]
ATTRIBUTE_VALUES: list[Any] = ["", "Gold", "gold", "gold ", "Silver", "3", "50%_off", 0, 1, 3]
ATTRIBUTE_VALUES += [2.5, -3, 10, 0.1, True, False, None, [1]]
ATTRIBUTE_NUMBERS = [0, 1, 3, 2.5, -3, 10, 0.1]
ATTRIBUTE_TEXT = ["Gold", "gold ", "old", "Silver", "3", "%", "_", "G"]
ATTRIBUTE_FIELDS = [
    FieldSpec(f"attributes.{key}", key, "attribute", ATTRIBUTE_OPERATORS) for key in ATTRIBUTE_KEYS
]
# Times of day that sit on the edges of a local day.
TIMES = [time(0, 0), time(0, 0, 0, 1), time(12, 0), time(23, 59, 59, 999999), time(23, 59, 59)]


def money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    """An aware datetime on a local day near TODAY, often right on a day boundary."""
    day = TODAY - timedelta(days=draw(st.integers(-3, 40)))
    moment = draw(st.sampled_from(TIMES)) if draw(st.booleans()) else draw(st.times())
    return datetime.combine(day, moment, tzinfo=ZoneInfo(zone))


@st.composite
def people(draw: st.DrawFn, zone: str) -> list[Person]:
    count = draw(st.integers(min_value=1, max_value=18))
    population = []
    for index in range(count):
        orders = draw(st.sampled_from([0, 0, 1, 2, 3, 4, 7]))
        person = Person(
            key=f"c{index}",
            city=draw(st.sampled_from(CITIES)),
            country=draw(st.sampled_from(COUNTRIES)),
            email=draw(st.sampled_from(EMAILS)),
            tags=set(draw(st.lists(st.sampled_from(TAGS), max_size=3))),
            signed_up_at=draw(st.none() | moments(zone)),
            marketing_consent=draw(st.booleans()),
            unsubscribed=draw(st.booleans()),
            attributes=draw(
                st.dictionaries(
                    st.sampled_from(ATTRIBUTE_KEYS), st.sampled_from(ATTRIBUTE_VALUES), max_size=3
                )
            ),
        )
        if orders:
            first, last = sorted([draw(moments(zone)), draw(moments(zone))])
            person.order_count = orders
            person.total_spend = money(draw(st.sampled_from(CENTS[1:])))
            person.first_order_at, person.last_order_at = first, last
        population.append(person)
    return population


def _day_text(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


def _scalar(draw: st.DrawFn, field_type: str, kind: str) -> Any:
    if field_type == "attribute":
        if kind == "scalar" and draw(st.booleans()):
            return draw(st.sampled_from(ATTRIBUTE_TEXT))
        if kind == "text":
            return draw(st.sampled_from(ATTRIBUTE_TEXT))
        return draw(st.sampled_from(ATTRIBUTE_NUMBERS))
    if kind == "days":
        return draw(st.integers(min_value=1, max_value=45))
    if field_type == "money":
        return float(money(draw(st.sampled_from(CENTS))))
    if field_type == "integer":
        return draw(st.integers(min_value=0, max_value=45))
    if field_type == "date":
        return _day_text(draw(st.integers(-3, 42)))
    return draw(st.sampled_from(TEXT_VALUES))


@st.composite
def conditions(draw: st.DrawFn, operators: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A random condition (with one of `operators` when given)."""
    fields = [*FIELDS, *ATTRIBUTE_FIELDS]
    if operators is not None:
        fields = [spec for spec in fields if any(spec.operator(key) for key in operators)]
    spec = draw(st.sampled_from(fields))
    choices = [op for op in spec.operators if operators is None or op.key in operators]
    operator = draw(st.sampled_from(choices))
    condition: dict[str, Any] = {"field": spec.key, "operator": operator.key}
    if operator.value_kind == "none":
        return condition
    if operator.value_kind == "list":
        pool = TAG_VALUES if spec.type == "tags" else TEXT_VALUES + CITIES[1:] + COUNTRIES[1:]
        if spec.type == "attribute":
            pool = ATTRIBUTE_TEXT
        condition["value"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif operator.value_kind == "range":
        low, high = sorted(
            [_scalar(draw, spec.type, "range"), _scalar(draw, spec.type, "range")],
            key=lambda item: (
                date.fromisoformat(item) if spec.type == "date" else item  # type: ignore[no-any-return]
            ),
        )
        condition["value"] = [low, high]
    else:
        condition["value"] = _scalar(draw, spec.type, operator.value_kind)
    return condition


@st.composite
def groups(draw: st.DrawFn, depth: int = 1) -> dict[str, Any]:
    children: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4 if depth == 1 else 3))):
        nest = depth < MAX_RULE_DEPTH and draw(st.integers(0, 4)) == 0
        children.append(draw(groups(depth + 1)) if nest else draw(conditions()))
    return {"match": draw(st.sampled_from(["all", "any"])), "conditions": children}
