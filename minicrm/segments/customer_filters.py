"""The customer list's filters as segment rules, for "Save as segment".

It lives here because segments build on customers (customers know nothing of segments): the list
links to `segments:new_from_customers` with its own query string, and this turns that query into
the rules that select the same customers.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# The list's query parameters that filter (the sort and the page do not).
FILTER_PARAMETERS = ("q", "city", "country", "tag", "spend_min", "spend_max")


def rules_from_customer_filters(query: Mapping[str, str]) -> dict[str, Any] | None:
    """The rules (DESIGN.md "Segment rules") that select the customers the list shows for these
    filters, or None when a filter has no rule.

    An email search is `email starts_with` (emails are stored lower-case; the rule ignores case),
    the tag filter `has_any` of that tag, spend bounds `gte`/`lte`. A name or external-id search
    has no rule field. City and country compare exactly in the list and ignoring case in rules:
    the same customers unless two spellings differ only in case. A spend bound that is not a
    number is left out, as the list's form leaves it out.
    """
    conditions: list[dict[str, Any]] = []
    search = query.get("q", "").strip()
    if search:
        if "@" not in search:
            return None
        conditions.append({"field": "email", "operator": "starts_with", "value": search.lower()})
    for key in ("city", "country"):
        value = query.get(key, "").strip()
        if value:
            conditions.append({"field": key, "operator": "eq", "value": value})
    tag = query.get("tag", "").strip()
    if tag:
        conditions.append({"field": "tags", "operator": "has_any", "value": [tag.lower()]})
    for key, operator in (("spend_min", "gte"), ("spend_max", "lte")):
        try:
            amount = Decimal(query.get(key, "").strip())
        except InvalidOperation:
            continue
        if amount.is_finite():
            conditions.append({"field": "total_spend", "operator": operator, "value": str(amount)})
    return {"match": "all", "conditions": conditions}
