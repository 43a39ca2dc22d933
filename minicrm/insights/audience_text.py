"""The built-in parser from plain-language audience descriptions to segment rules.

"customers who spent over ₹5,000 and have not ordered in 90 days" becomes
{"match": "all", "conditions": [total_spend gt 5000, last_order_date not_in_last_days 90]}.

It understands a fixed set of phrasings (see `parse_audience_text`); whatever it cannot read is
left out of the rules and named in the explanation, never guessed. "and" binds tighter than
"or"; parentheses and "either ... or ..." group alternatives inside an "and".
"""

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Node = dict[str, Any]
Connector = Literal["and", "or"]

# ---- Words and numbers ------------------------------------------------------------------------

NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "sixty": 60,
    "ninety": 90,
}
TIMES_WORDS = {"once": 1, "twice": 2, "thrice": 3}
UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
MULTIPLIERS = {
    "k": 1_000,
    "thousand": 1_000,
    "l": 100_000,
    "lac": 100_000,
    "lacs": 100_000,
    "lakh": 100_000,
    "lakhs": 100_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "million": 1_000_000,
    "cr": 10_000_000,
    "crore": 10_000_000,
    "crores": 10_000_000,
}
MONTHS = {
    name.lower(): index
    for index in range(1, 13)
    for name in (calendar.month_name[index], calendar.month_abbr[index])
}
MONTHS["sept"] = 9

# Names that make "from X" / "in X" a country rather than a city (compared without case).
ONE_WORD_COUNTRIES = (
    "afghanistan albania algeria argentina armenia australia austria azerbaijan bahrain"
    " bangladesh belarus belgium bhutan bolivia brazil brunei bulgaria cambodia cameroon"
    " canada chile china colombia croatia cuba cyprus czechia denmark ecuador egypt"
    " estonia ethiopia fiji finland france georgia germany ghana greece hungary iceland"
    " india indonesia iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya"
    " kuwait laos latvia lebanon lithuania luxembourg madagascar malaysia maldives malta"
    " mauritius mexico moldova mongolia morocco myanmar nepal netherlands nigeria norway"
    " oman pakistan panama peru philippines poland portugal qatar romania russia rwanda"
    " serbia singapore slovakia slovenia somalia spain sweden switzerland syria taiwan"
    " tanzania thailand tunisia turkey uganda ukraine uruguay uzbekistan venezuela vietnam"
    " yemen zambia zimbabwe uk usa us uae"
)
COUNTRIES = frozenset(
    [
        *ONE_WORD_COUNTRIES.split(" "),
        "south africa",
        "south korea",
        "north korea",
        "new zealand",
        "sri lanka",
        "saudi arabia",
        "united kingdom",
        "united states",
        "united states of america",
        "united arab emirates",
        "czech republic",
        "hong kong",
        "great britain",
    ]
)

AMOUNT = (
    r"(?:₹|rs\.?|inr|\$|usd|eur|€|£)?\s*(?P<num>\d[\d,]*(?:\.\d+)?)"
    r"\s?(?P<mult>k|thousand|lakhs?|lacs?|l|crores?|cr|mn|million|m)?"
    r"(?:\s*(?:₹|rs\.?|rupees|inr))?"
)
COUNT = r"(?P<num>\d+|" + "|".join(NUMBER_WORDS) + r")"
UNIT = r"(?P<unit>days?|weeks?|months?|years?)"

COMPARATORS: list[tuple[str, str]] = [
    # (regex in front of a number, operator); longer phrases first.
    (
        r"(?:greater|more|higher|bigger) than or equal to|at least|no less than|not less than"
        r"|minimum(?: of)?|min\.?|>=|≥",
        "gte",
    ),
    (
        r"(?:less|fewer|lower|smaller) than or equal to|at most|no more than|not more than|up to"
        r"|maximum(?: of)?|max\.?|<=|≤",
        "lte",
    ),
    (r"more than|over|above|greater than|higher than|bigger than|exceeding|in excess of|>", "gt"),
    (r"less than|fewer than|under|below|lower than|smaller than|<", "lt"),
    (r"exactly|equal to|equals|=|of|is", "eq"),
]
SUFFIX_COMPARATORS: list[tuple[str, str]] = [
    (r"\s*(?:or more|or above|or higher|and above|and up|\+|plus)", "gte"),
    (r"\s*(?:or less|or fewer|or below|or under|and below)", "lte"),
]


# ---- Parsed fragments -------------------------------------------------------------------------


@dataclass
class Clause:
    """One condition read from one fragment; `kind` marks clauses a bare name can extend."""

    node: Node
    kind: Literal["city", "country", "tags", "other"] = "other"
    negated: bool = False
    notes: list[str] = field(default_factory=list)
    joins: list[Connector] = field(default_factory=list)


@dataclass(frozen=True)
class Bare:
    """A fragment that is only a name ("Delhi" in "from Mumbai or Delhi")."""

    text: str


@dataclass(frozen=True)
class Unknown:
    text: str


Fragment = Clause | Bare | Unknown


@dataclass
class Token:
    kind: Literal["text", "and", "or", "(", ")", "either"]
    text: str = ""
    parsed: Fragment | None = None


@dataclass
class ParsedText:
    """Rules as JSON, the fragments left out, and notes on how phrases were read."""

    rules: Node
    unparsed: list[str]
    notes: list[str]


# ---- Entry point ------------------------------------------------------------------------------


def parse_audience_text(text: str, *, today: date | None = None) -> ParsedText:
    """Rules for a plain-language description, plus what could not be read.

    `today` only anchors dates written without a year ("after 1 March").
    """
    today = today or date.today()
    tokens = _tokenize(_normalize(text))
    for token in tokens:
        if token.kind == "text":
            token.parsed = _parse_fragment(token.text, today=today)
    tokens = _merge_bare_names(tokens)
    parser = _TreeParser(tokens)
    tree = parser.expression()
    if parser.position < len(tokens):
        parser.unknown.extend(
            token.text for token in tokens[parser.position :] if token.kind == "text"
        )
    notes = [
        note for token in tokens if isinstance(token.parsed, Clause) for note in token.parsed.notes
    ]
    return ParsedText(rules=_root(tree), unparsed=parser.unknown, notes=notes)


# ---- Tokens -----------------------------------------------------------------------------------

CONTRACTIONS = {
    r"\bhaven'?t\b": "have not",
    r"\bhasn'?t\b": "has not",
    r"\bhadn'?t\b": "had not",
    r"\bdidn'?t\b": "did not",
    r"\bdon'?t\b": "do not",
    r"\bdoesn'?t\b": "does not",
    r"\baren'?t\b": "are not",
    r"\bisn'?t\b": "is not",
    r"\bweren'?t\b": "were not",
    r"\bwasn'?t\b": "was not",
}
BETWEEN_AND = "\u0000"
KEPT_OR = "\u0001"
CONNECTOR_SPLIT = re.compile(
    r"(\(|\)|,(?=\s|$)|;|\band\b|\bor\b|\bbut\b|\beither\b|\bwho\b|\bwhose\b|\bthat\b|\bwhich\b"
    r"|\band also\b|&)",
    re.IGNORECASE,
)


def _normalize(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "-").replace("\u2014", " - ")
    for pattern, replacement in CONTRACTIONS.items():
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    # "between X and Y" keeps its "and": it is one condition, not two.
    text = re.sub(
        r"\b(between\s+[^()]{1,40}?)\s+and\s+",
        lambda match: f"{match.group(1)} {BETWEEN_AND} ",
        text,
        flags=re.IGNORECASE,
    )
    # "Jan 15, 2025" is one date, not two clauses.
    text = re.sub(r"\b(\d{1,2}(?:st|nd|rd|th)?),\s+(\d{4})\b", r"\1 \2", text)
    # "3 or more orders" is one condition too.
    text = re.sub(
        r"\bor\s+(?=(?:more|less|fewer|above|higher|below|under|over)\b)",
        f"{KEPT_OR} ",
        text,
        flags=re.IGNORECASE,
    )
    return re.sub(r"\s+", " ", text).strip().rstrip(".!?").strip()


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    for piece in CONNECTOR_SPLIT.split(text):
        piece = piece.strip()
        if not piece:
            continue
        lowered = piece.lower()
        if lowered in {"(", ")", "either"}:
            tokens.append(Token(kind=lowered))  # type: ignore[arg-type]
        elif lowered == "or":
            _add_connector(tokens, "or")
        elif lowered in {"and", "but", ",", ";", "who", "whose", "that", "which", "and also", "&"}:
            _add_connector(tokens, "and")
        else:
            text = piece.replace(BETWEEN_AND, "and").replace(KEPT_OR, "or")
            tokens.append(Token(kind="text", text=text))
    while tokens and tokens[-1].kind in {"and", "or"}:
        tokens.pop()
    return tokens


def _add_connector(tokens: list[Token], kind: Connector) -> None:
    if not tokens or tokens[-1].kind in {"(", "either"}:
        return  # a leading "who" or "and" joins nothing
    if tokens[-1].kind in {"and", "or"}:
        # ", or" and "and who" are one connector; "or" wins because it is the explicit one.
        if kind == "or":
            tokens[-1].kind = "or"
        return
    tokens.append(Token(kind=kind))


def _merge_bare_names(tokens: list[Token]) -> list[Token]:
    """Fold "Delhi" in "from Mumbai or Delhi" (and "gold" in "tagged vip and gold") into a list."""
    merged: list[Token] = []
    last_clause: Clause | None = None
    for token in tokens:
        if (
            token.kind == "text"
            and isinstance(token.parsed, Bare)
            and last_clause is not None
            and _fits_list(last_clause, token.parsed.text)
            and merged
            and merged[-1].kind in {"and", "or"}
        ):
            connector: Connector = merged.pop().kind  # type: ignore[assignment]
            _extend_clause(last_clause, token.parsed.text, connector)
            continue
        merged.append(token)
        if token.kind == "text":
            clause = token.parsed
            last_clause = clause if isinstance(clause, Clause) and clause.kind != "other" else None
        elif token.kind not in {"and", "or"}:
            last_clause = None
    return merged


def _fits_list(clause: Clause, name: str) -> bool:
    """Only a tag-like word extends a tag list, only a proper name a list of places:
    "from Pune and love shoes" must not read "love shoes" as a city."""
    name = name.strip().strip("'\"")
    if clause.kind == "tags":
        return bool(re.fullmatch(r"#?[\w\-]+", name))
    words = _place_name(name).split()
    return name.lower() in COUNTRIES or all(word[:1].isupper() for word in words)


def _extend_clause(clause: Clause, name: str, connector: Connector) -> None:
    node = clause.node
    clause.joins.append(connector)
    if clause.kind == "tags":
        node["value"].append(_tag_name(name))
        if not clause.negated:
            node["operator"] = "has_any" if "or" in clause.joins else "has_all"
        return
    # A customer lives in one place, so "from Mumbai and Delhi" means either of them.
    values = node["value"] if isinstance(node["value"], list) else [node["value"]]
    node["value"] = [*values, _place_name(name)]
    node["operator"] = "not_in" if clause.negated else "in"


# ---- Tree -------------------------------------------------------------------------------------


class _TreeParser:
    """expression := term ("or" term)*; term := factor ("and" factor)*;
    factor := "(" expression ")" | "either" factor ("or" factor)+ | text."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.unknown: list[str] = []

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def joined(self, connector: str, read: Callable[[], Node | None]) -> list[Node | None]:
        """`read` once, then again after each `connector`."""
        items = [read()]
        while (token := self.peek()) is not None and token.kind == connector:
            self.take()
            items.append(read())
        return items

    def expression(self) -> Node | None:
        return _group("any", self.joined("or", self.term))

    def term(self) -> Node | None:
        return _group("all", self.joined("and", self.factor))

    def factor(self) -> Node | None:
        token = self.peek()
        if token is None or token.kind in {"and", "or", ")"}:
            return None
        self.take()
        if token.kind == "(":
            inner = self.expression()
            if (closing := self.peek()) is not None and closing.kind == ")":
                self.take()
            return inner
        if token.kind == "either":
            return _group("any", self.joined("or", self.factor))
        parsed = token.parsed
        if isinstance(parsed, Clause):
            return parsed.node
        if isinstance(parsed, Bare | Unknown) and parsed.text:
            self.unknown.append(token.text)
        return None


def _group(match: Literal["all", "any"], children: list[Node | None]) -> Node | None:
    kept: list[Node] = []
    for child in children:
        if child is None:
            continue
        if child.get("match") == match:
            kept.extend(child["conditions"])  # (a and b) and c is a and b and c
        else:
            kept.append(child)
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    return {"match": match, "conditions": kept}


def _root(tree: Node | None) -> Node:
    if tree is None:
        return {"match": "all", "conditions": []}
    if "match" in tree:
        return tree
    return {"match": "all", "conditions": [tree]}


# ---- Fragments --------------------------------------------------------------------------------

LEADING_FILLER = re.compile(
    r"^(?:show me|find|get|list|give me|select|target|all|any|every|the|those|these|anyone"
    r"|everyone|everybody|customers?|people|persons?|users?|shoppers?|buyers?|clients?"
    r"|members?|folks|who|that|which|whose|with|having|have|has|had|are|is|were|was|been"
    r"|did|do|does|and|they|their|also|still|currently|only|ones?)\b\s*",
    re.IGNORECASE,
)
TRAILING_FILLER = re.compile(
    r"\s*\b(?:in total|overall|in all|so far|till date|to date|lifetime|total|ago only|yet"
    r"|customers?|people|users?|shoppers?|only)$",
    re.IGNORECASE,
)


def _strip_fillers(text: str) -> str:
    previous = None
    text = text.strip().strip("'\"").strip()
    while previous != text:
        previous = text
        text = LEADING_FILLER.sub("", text).strip()
    return text


PLACE_SUFFIX = re.compile(
    r"\s+(?=(?:from|in|living in|based in|located in)\s+(?:the\s+)?[^\W\d_])", re.IGNORECASE
)


def _parse_fragment(text: str, *, today: date) -> Fragment:
    core = _strip_fillers(text)
    if not core:
        return Unknown("")  # only filler words ("customers" in "customers that ...")
    clause = _read(core, today)
    if clause is not None:
        return clause
    # "spent over 5000 in Mumbai": a condition followed by a place, without a connector.
    for split in reversed(list(PLACE_SUFFIX.finditer(core))):
        first, place = _read(core[: split.start()], today), _read_place(core[split.end() :], today)
        if first is not None and place is not None:
            return Clause(
                {"match": "all", "conditions": [first.node, place.node]}, notes=first.notes
            )
    if _is_name(core):
        return Bare(core)
    return Unknown(text.strip())


def _read(text: str, today: date) -> Clause | None:
    for candidate in dict.fromkeys([text, TRAILING_FILLER.sub("", text).strip()]):
        if not candidate:
            continue
        for reader in READERS:
            clause = reader(candidate, today)
            if clause is not None:
                return clause
    return None


def _full(pattern: str, text: str) -> re.Match[str] | None:
    return re.fullmatch(pattern, text, flags=re.IGNORECASE)


def _condition(field_name: str, operator: str, value: Any = None) -> Node:
    node: Node = {"field": field_name, "operator": operator}
    if value is not None:
        node["value"] = value
    return node


# Money and counts --------------------------------------------------------------------------


def _amount(match: re.Match[str]) -> int | float | None:
    raw = match.group("num").replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    multiplier = (match.group("mult") or "").lower()
    value *= MULTIPLIERS.get(multiplier, 1)
    value = value.quantize(Decimal("0.01"))
    return int(value) if value == value.to_integral_value() else float(value)


def _count(raw: str) -> int:
    raw = raw.lower()
    return NUMBER_WORDS[raw] if raw in NUMBER_WORDS else int(raw)


def _compare(
    text: str, value_pattern: str, read: Callable[[re.Match[str]], Any]
) -> tuple[str, Any] | None:
    """An operator and value from "over 5,000", "at least 3", "between 2 and 5", "5k or more"."""
    text = text.strip()
    ranges = [
        # "between 2 and 5" is a range or nothing; "2 to 5" / "from 2 to 5" / "2-5" may be.
        (r"between\s+(?P<low>.+?)\s+(?:and|to|-)\s+(?P<high>.+)", True),
        (r"(?:from\s+)?(?P<low>.+?)\s*(?:to|-)\s*(?P<high>.+)", False),
    ]
    for pattern, only_a_range in ranges:
        if match := _full(pattern, text):
            low_match = _full(value_pattern, match.group("low"))
            high_match = _full(value_pattern, match.group("high"))
            if low_match and high_match:
                low, high = read(low_match), read(high_match)
                if low is not None and high is not None:
                    return "between", [min(low, high), max(low, high)]
            if only_a_range:
                return None
    for words, operator in COMPARATORS:
        if match := _full(rf"(?:{words})\s*{value_pattern}", text):
            return operator, read(match)
    for words, operator in SUFFIX_COMPARATORS:
        if match := _full(rf"{value_pattern}{words}", text):
            return operator, read(match)
    if match := _full(value_pattern, text):
        return "eq", read(match)
    return None


SPEND_WORDS = (
    r"(?:a\s+)?(?:total\s+|lifetime\s+)?(?:spent|spend|spends|spending|spent a total of"
    r"|revenue|ltv|lifetime value|sales|purchases? worth|bought goods worth)"
    r"(?:\s+(?:is|of|was|has been|amount|amounting to))?"
)
AVERAGE_ORDER_WORDS = (
    r"(?:an?\s+)?(?:average order value|avg\.? order value|aov|average order|average basket"
    r"|average basket size|average order size|avg\.? order)(?:\s+(?:is|of|was))?"
)


def _money_clause(field_name: str, words: str, text: str) -> Clause | None:
    """`words` then an amount comparison: "spent over ₹5,000", "aov between 500 and 900"."""
    match = _full(rf"{words}\s+(?P<rest>.+)", text)
    if not match:
        return None
    compared = _compare(TRAILING_FILLER.sub("", match.group("rest")).strip(), AMOUNT, _amount)
    return Clause(_condition(field_name, *compared)) if compared else None


def _read_spend(text: str, today: date) -> Clause | None:
    return _money_clause("total_spend", SPEND_WORDS, text)


def _read_average_order_value(text: str, today: date) -> Clause | None:
    return _money_clause("avg_order_value", AVERAGE_ORDER_WORDS, text)


def _read_order_count(text: str, today: date) -> Clause | None:
    if _full(r"repeat (?:customers?|buyers?|purchasers?|shoppers?)|returning customers?", text):
        return Clause(_condition("order_count", "gte", 2))
    if _full(r"one-?time (?:customers?|buyers?|purchasers?|shoppers?)", text):
        return Clause(_condition("order_count", "eq", 1))
    match = _full(
        r"(?:placed|made|with|having|has|have)?\s*(?P<rest>.+?)\s+(?:orders?|purchases?)"
        r"(?:\s+(?:placed|made|in total|overall|so far))?",
        text,
    ) or _full(
        r"(?:order count|number of orders|orders? placed|orders?)(?:\s+(?:is|of))?\s+(?P<rest>.+)",
        text,
    )
    if match is None:
        match = _full(
            r"(?:ordered|purchased|bought|shopped|placed an order|made a purchase)\s+"
            r"(?P<rest>.+?)(?:\s+times?)?",
            text,
        )
        if match is None:
            return None
        rest = match.group("rest")
        for word, number in TIMES_WORDS.items():
            rest = re.sub(rf"\b{word}\b", str(number), rest, flags=re.IGNORECASE)
        if not re.search(r"\d|\b(?:" + "|".join(NUMBER_WORDS) + r")\b", rest, re.IGNORECASE):
            return None
    else:
        rest = match.group("rest")
    compared = _compare(rest, COUNT, lambda found: _count(found.group("num")))
    if compared is None:
        return None
    return Clause(_condition("order_count", *compared))


def _read_never_ordered(text: str, today: date) -> Clause | None:
    if _full(
        r"(?:never|not yet|not ever)\s+(?:ordered|purchased|bought|shopped"
        r"|placed\s+(?:an?\s+|any\s+)?orders?|made\s+(?:a\s+|any\s+)?(?:purchases?|orders?)|converted)(?:\s+(?:yet|before|anything))?"
        r"|(?:no|zero|0|without(?: any)?)\s+(?:orders?|purchases?)(?:\s+(?:yet|ever|so far))?"
        r"|not\s+(?:ordered|purchased|bought)(?:\s+anything)?\s+(?:yet|ever)"
        r"|(?:never|not)\s+(?:ordered|purchased|bought)",
        text,
    ):
        return Clause(_condition("order_count", "eq", 0))
    return None


# Dates ---------------------------------------------------------------------------------------

ORDER_VERBS = (
    r"(?:ordered|order|orders|purchased|purchase|purchases|bought|shopped|placed\s+(?:an?\s+|any\s+)?orders?"
    r"|made\s+(?:an?\s+|any\s+)?(?:purchases?|orders?)|been active|active|transacted)"
)


def _days(count: str, unit: str | None) -> int:
    return _count(count) * UNIT_DAYS[(unit or "day").lower().rstrip("s")]


def _read_recency(text: str, today: date) -> Clause | None:
    match = _full(
        rf"(?P<neg>not\s+|no\s+|without\s+(?:an?\s+|any\s+)?|never\s+)?(?:any\s+)?{ORDER_VERBS}"
        r"(?:\s+(?:anything|something))?\s+(?:in|within|during|for|over|in the course of)"
        rf"\s+(?:the\s+)?(?:last|past|previous|recent)?\s*(?:{COUNT}\s+)?{UNIT}",
        text,
    ) or _full(
        rf"(?P<neg>inactive|lapsed|dormant|churned|quiet)\s+(?:for|in|over)\s+(?:the\s+)?"
        rf"(?:last|past)?\s*(?:{COUNT}\s+)?{UNIT}",
        text,
    )
    if not match:
        return None
    days = _days(match.group("num") or "1", match.group("unit"))
    notes = []
    if match.group("unit").lower().startswith(("month", "year")):
        notes.append(f"“{text}” counts a month as 30 days and a year as 365.")
    operator = "not_in_last_days" if match.group("neg") else "in_last_days"
    return Clause(_condition("last_order_date", operator, days), notes=notes)


def _read_days_since(text: str, today: date) -> Clause | None:
    match = _full(
        r"(?:last\s+(?:ordered|order(?:ed)?|purchased?|bought|purchase|shopped))"
        r"(?:\s+(?:was|placed))?\s+(?P<rest>.+?)\s+" + UNIT + r"\s+ago",
        text,
    )
    if not match:
        return None
    rest = re.sub(r"^within\b", "at most", match.group("rest").strip(), flags=re.IGNORECASE)
    compared = _compare(rest, COUNT, lambda found: _count(found.group("num")))
    if compared is None:
        return None
    operator, value = compared
    scale = UNIT_DAYS[match.group("unit").lower().rstrip("s")]
    value = [bound * scale for bound in value] if operator == "between" else value * scale
    return Clause(_condition("days_since_last_order", operator, value))


@dataclass(frozen=True)
class Period:
    first: date
    last: date


def _period(text: str, today: date) -> Period | None:
    """A day, a month or a year from ISO, D/M/Y, "1 March 2024", "March 1, 2024", "2024"."""
    text = text.strip().rstrip(",").strip()
    text = re.sub(r"^(?:the\s+)?", "", text, flags=re.IGNORECASE)
    try:
        if match := _full(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})", text):
            day = date(int(match["y"]), int(match["m"]), int(match["d"]))
            return Period(day, day)
        if match := _full(r"(?P<d>\d{1,2})[/.](?P<m>\d{1,2})[/.](?P<y>\d{4})", text):
            day = date(int(match["y"]), int(match["m"]), int(match["d"]))
            return Period(day, day)
        month_names = "|".join(sorted(MONTHS, key=len, reverse=True))
        if match := _full(
            rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{month_names})\.?,?(?:\s+(?P<y>\d{{4}}))?",
            text,
        ) or _full(
            rf"(?P<mon>{month_names})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?(?:\s+(?P<y>\d{{4}}))?",
            text,
        ):
            year = int(match["y"]) if match["y"] else today.year
            day = date(year, MONTHS[match["mon"].lower()], int(match["d"]))
            return Period(day, day)
        if match := _full(rf"(?P<mon>{month_names})\.?,?\s+(?P<y>\d{{4}})", text):
            year, month = int(match["y"]), MONTHS[match["mon"].lower()]
            last = calendar.monthrange(year, month)[1]
            return Period(date(year, month, 1), date(year, month, last))
        if match := _full(r"(?P<y>(?:19|2\d)\d{2})", text):
            year = int(match["y"])
            return Period(date(year, 1, 1), date(year, 12, 31))
    except ValueError:
        return None
    return None


def _date_condition(field_name: str, word: str, rest: str, today: date) -> Node | None:
    """`before`/`after`/`since`/`on`/`in`/`between` a period as one date condition."""
    word = word.lower()
    if word == "between":
        match = _full(r"(?P<first>.+?)\s+(?:and|to|-)\s+(?P<last>.+)", rest)
        if not match:
            return None
        first, last = _period(match["first"], today), _period(match["last"], today)
        if first is None or last is None:
            return None
        low, high = sorted([first.first, last.last])
        return _condition(field_name, "between", [low.isoformat(), high.isoformat()])
    period = _period(rest, today)
    if period is None:
        return None
    if word == "before":
        return _condition(field_name, "before", period.first.isoformat())
    if word == "after":
        return _condition(field_name, "after", period.last.isoformat())
    if word in {"since", "from"}:
        # "since 1 March" includes 1 March; `after` is strictly later, so step back a day.
        return _condition(field_name, "after", (period.first - timedelta(days=1)).isoformat())
    if period.first == period.last:
        return _condition(field_name, "on", period.first.isoformat())
    return _condition(field_name, "between", [period.first.isoformat(), period.last.isoformat()])


def _read_order_date(text: str, today: date) -> Clause | None:
    match = _full(
        rf"(?P<which>last|latest|most recent|first)?\s*(?:{ORDER_VERBS}|order date|purchase)"
        r"(?:\s+(?:was|date))?\s+(?P<word>before|after|since|on|between|in)\s+(?P<rest>.+)",
        text,
    )
    if not match:
        return None
    which = (match["which"] or "").lower()
    word = match["word"].lower()
    if which == "first":
        field_name = "first_order_date"
    elif which:
        field_name = "last_order_date"
    elif word == "before":
        # "ordered before March" is any order before March: the first one was.
        field_name = "first_order_date"
    elif word in {"after", "since"}:
        # "ordered after March" is any order after March: the latest one was.
        field_name = "last_order_date"
    else:
        return None  # "ordered on/in/between ..." (any order then) has no rule of its own
    node = _date_condition(field_name, word, match["rest"], today)
    return Clause(node) if node else None


def _read_signup(text: str, today: date) -> Clause | None:
    verbs = (
        r"(?:signed\s*up|sign-?ups?|joined|registered|subscribed|became (?:a )?customers?"
        r"|sign-?up date(?: is| was)?|created|acquired|onboarded)"
    )
    match = _full(
        rf"(?P<neg>not\s+)?{verbs}\s+(?:in|within|during|over)\s+(?:the\s+)?"
        rf"(?:last|past|previous|recent)\s*(?:{COUNT}\s+)?{UNIT}",
        text,
    )
    if match:
        days = _days(match.group("num") or "1", match.group("unit"))
        operator = "not_in_last_days" if match["neg"] else "in_last_days"
        return Clause(_condition("signup_date", operator, days))
    match = _full(
        rf"{verbs}\s+(?P<word>before|after|since|on|between|in|from)\s+(?P<rest>.+)", text
    )
    if not match:
        return None
    node = _date_condition("signup_date", match["word"], match["rest"], today)
    return Clause(node) if node else None


# Places, tags and email ------------------------------------------------------------------------

NAME_PATTERN = r"[^\W\d_][\w.'\-]*(?:\s+[^\W\d_][\w.'\-]*){0,3}"
RESERVED_WORDS = re.compile(
    r"\b(?:last|past|days?|weeks?|months?|years?|orders?|spent|spend|total|tagged|email|between)\b",
    re.IGNORECASE,
)


def _is_name(text: str) -> bool:
    text = text.strip().strip("'\"")
    return bool(_full(NAME_PATTERN, text)) and not RESERVED_WORDS.search(text)


def _place_name(text: str) -> str:
    return re.sub(r"^the\s+", "", text.strip().strip("'\""), flags=re.IGNORECASE).strip()


def _read_place(text: str, today: date) -> Clause | None:
    match = _full(
        r"(?P<neg>not\s+(?:from|in|living in|based in|located in)|outside(?:\s+of)?|excluding"
        r"|except)\s+(?:the\s+)?(?P<kind>city of|city|country)?\s*(?P<name>.+)"
        r"|(?:from|in|living in|who live in|lives? in|live in|based in|located in|residing in"
        r"|resident in|residents of)\s+(?:the\s+)?(?P<kind2>city of|city|country)?\s*(?P<name2>.+)",
        text,
    )
    if match:
        negated = bool(match["neg"])
        kind_word = (match["kind"] or match["kind2"] or "").lower()
        name = match["name"] or match["name2"]
    else:
        match = _full(
            r"(?:their\s+)?(?P<kind>city|country)\s+(?P<verb>is not|is|=|!=|equals|not)"
            r"\s+(?P<name>.+)",
            text,
        )
        if not match:
            return None
        negated = match["verb"].lower() in {"is not", "!=", "not"}
        kind_word = match["kind"].lower()
        name = match["name"]
    name = _place_name(name)
    if not _is_name(name):
        return None
    if kind_word.startswith("city"):
        kind: Literal["city", "country"] = "city"
    elif kind_word == "country" or name.lower() in COUNTRIES:
        kind = "country"
    else:
        kind = "city"
    return Clause(_condition(kind, "ne" if negated else "eq", name), kind=kind, negated=negated)


def _tag_name(text: str) -> str:
    return text.strip().strip("'\"#").strip().lower()


def _read_tags(text: str, today: date) -> Clause | None:
    negation = r"(?P<neg>not\s+|without\s+(?:the\s+|a\s+|any\s+)?|no\s+|lacking\s+(?:the\s+)?)?"
    match = _full(
        negation + r"(?:tagged(?:\s+as|\s+with)?|tags?(?:\s+(?:is|of|=|:|named|called))?"
        r"|labell?ed(?:\s+as)?|labels?)\s+(?P<name>.+)",
        text,
    ) or _full(negation + r"(?:the\s+|a\s+|an\s+)?(?P<name>['\"#]?[\w\-]+['\"]?)\s+tag", text)
    if not match:
        return None
    name = _tag_name(match["name"])
    if not re.fullmatch(r"[\w][\w\- ]{0,49}", name) or RESERVED_WORDS.search(name):
        return None
    negated = bool(match["neg"])
    return Clause(
        _condition("tags", "has_none" if negated else "has_any", [name]),
        kind="tags",
        negated=negated,
    )


EMAIL_OPERATORS = [
    (
        r"does not contain|do not contain|not containing|without|excluding|not including",
        "not_contains",
    ),
    (r"contains|containing|includes|including|has|with|at|on|matching|like", "contains"),
    (r"ends with|ending with|ending in|ends in", "ends_with"),
    (r"starts with|starting with|begins with|beginning with", "starts_with"),
    (r"is not|!=", "ne"),
    (r"is|equals|=", "eq"),
]


def _read_email(text: str, today: date) -> Clause | None:
    if _full(
        r"(?:no|without|missing|empty|blank)\s+(?:an?\s+)?emails?(?:\s+address(?:es)?)?", text
    ):
        return Clause(_condition("email", "is_empty"))
    if _full(r"(?:an?\s+)?emails?(?:\s+address(?:es)?)?(?:\s+on file)?", text):
        return Clause(_condition("email", "is_not_empty"))
    for words, operator in EMAIL_OPERATORS:
        match = _full(
            rf"(?:an?\s+|their\s+)?emails?(?:\s+address(?:es)?)?(?:\s+domain)?\s+(?:{words})"
            r"\s+(?P<value>\S+)",
            text,
        )
        if match:
            value = match["value"].strip("'\"").rstrip(".,")
            if operator == "ends_with":
                # The rule format has no "ends with"; a domain like "@gmail.com" only appears
                # at the end of an address, so "contains" selects the same people.
                return Clause(
                    _condition("email", "contains", value),
                    notes=[f"“{text}” is read as email contains “{value}” (no ends-with rule)."],
                )
            return Clause(_condition("email", operator, value))
    return None


READERS: list[Callable[[str, date], Clause | None]] = [
    _read_never_ordered,
    _read_recency,
    _read_days_since,
    _read_order_date,
    _read_signup,
    _read_spend,
    _read_average_order_value,
    _read_email,
    _read_tags,
    _read_order_count,
    _read_place,
]
