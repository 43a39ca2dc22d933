"""User-written message templates: Jinja2's SandboxedEnvironment, checked when they are saved.

A marketer's template never reaches Django's template engine, and the sandbox keeps it from
reaching Python. Every mistake we can find is found at save time, naming the field and the line:
a syntax error, an unknown placeholder or filter, a template too long or one whose message would
be. At send time a template therefore renders; an empty value (a customer with no first name)
is left undefined, so `{{ first_name | default("there") }}` reads "Hi there".
"""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from minicrm.core import formatting
from minicrm.core.errors import InvalidInputError

PLACEHOLDERS = (
    "first_name",
    "last_name",
    "email",
    "city",
    "country",
    "total_spend",
    "order_count",
    "last_order_date",
    "unsubscribe_url",
)
MAX_TEMPLATE_CHARS = 5_000
MAX_SUBJECT_CHARS = 200
MAX_MESSAGE_CHARS = 20_000

# The customer fields a message can use, as the delivery worker reads them (`.values(...)`).
CUSTOMER_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "city",
    "country",
    "total_spend",
    "order_count",
    "last_order_at",
)

# One customer with every field filled, to render a template once when it is saved.
_EXAMPLE_CUSTOMER: dict[str, Any] = {
    "id": 0,
    "first_name": "Asha",
    "last_name": "Rao",
    "email": "asha@example.com",
    "city": "Pune",
    "country": "India",
    "total_spend": Decimal("12500.00"),
    "order_count": 7,
    "last_order_at": datetime(2026, 3, 4, 12, 0),
}


class TemplateProblemError(InvalidInputError):
    """A template that cannot be used: `field` names it, `line` where the problem is."""

    def __init__(self, message: str, *, field: str, line: int | None = None) -> None:
        where = f"{field}, line {line}" if line else field
        super().__init__(f"{where}: {message}", field=field)
        self.line = line


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    # Messages are plain text (the email channel sends text/plain), so nothing is escaped.
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


def _unknown_name(tree: nodes.Template) -> tuple[str, int] | None:
    assigned = {node.name for node in tree.find_all(nodes.Name) if node.ctx in {"store", "param"}}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in PLACEHOLDERS and node.name not in assigned:
            return node.name, node.lineno
    return None


def template_check(*, field: str, text: str, max_chars: int = MAX_TEMPLATE_CHARS) -> None:
    """Raise TemplateProblemError (a 422) unless `text` renders for every customer."""
    if len(text) > max_chars:
        raise TemplateProblemError(f"at most {max_chars:,} characters.", field=field)
    env = environment()
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as error:
        raise TemplateProblemError(
            error.message or "syntax error", field=field, line=error.lineno
        ) from None
    unknown = _unknown_name(tree)
    if unknown:
        name, line = unknown
        known = ", ".join(PLACEHOLDERS)
        raise TemplateProblemError(
            f"unknown placeholder '{name}'; use one of {known}.", field=field, line=line
        )
    try:
        template = env.from_string(text)  # unknown filters and tests fail here
        # Rendered for a full customer and for an empty one: both must work and stay short.
        for customer in (_EXAMPLE_CUSTOMER, {"id": 0}):
            rendered = template.render(message_context(customer, unsubscribe_url="https://x/u/"))
            if len(rendered) > MAX_MESSAGE_CHARS:
                raise TemplateProblemError(
                    f"the message would be over {MAX_MESSAGE_CHARS:,} characters.", field=field
                )
    except TemplateSyntaxError as error:
        raise TemplateProblemError(
            error.message or "syntax error", field=field, line=error.lineno
        ) from None
    except (SecurityError, TemplateError, ArithmeticError, TypeError, ValueError) as error:
        raise TemplateProblemError(f"cannot be rendered: {error}", field=field) from None


@lru_cache(maxsize=64)
def compiled(text: str) -> Any:
    """The compiled template (cached: a campaign renders one template for every recipient)."""
    return environment().from_string(text)


def _shown(name: str, value: Any) -> Any:
    if name == "total_spend":
        return formatting.money(value)
    if isinstance(value, date | datetime):
        return formatting.day(value)
    return value


def message_context(customer: Mapping[str, Any], *, unsubscribe_url: str) -> dict[str, Any]:
    """The placeholders for one customer; an empty value is left out, so `default` applies."""
    values = {
        "first_name": customer.get("first_name"),
        "last_name": customer.get("last_name"),
        "email": customer.get("email"),
        "city": customer.get("city"),
        "country": customer.get("country"),
        "total_spend": customer.get("total_spend"),
        "order_count": customer.get("order_count"),
        "last_order_date": customer.get("last_order_at"),
        "unsubscribe_url": unsubscribe_url,
    }
    return {name: _shown(name, value) for name, value in values.items() if value not in (None, "")}


def render(text: str, context: Mapping[str, Any]) -> str:
    """One message. The template was checked at save time, so this renders."""
    return compiled(text).render(context)
