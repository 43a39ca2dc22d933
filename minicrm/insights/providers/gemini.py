"""The Gemini provider: google-genai with JSON response schemas, a timeout and retries.

Only the facts (aggregates) and the marketer's own text are ever sent. Rate limits, server
errors and timeouts are retried by the SDK with exponential backoff; if they persist they raise
`ProviderTransientError` (the insight task tries again later), anything else `ProviderError`.
"""

import enum
import json
from typing import Any, Literal, TypeVar

import httpx2  # the HTTP client google-genai 3.x runs on; its errors reach us unwrapped
from django.conf import settings
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field, ValidationError

from minicrm.core.formatting import shop_currency
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.rules import FIELDS

from .base import (
    MESSAGE_MAX_LENGTH,
    CampaignSummaryContent,
    InsightContent,
    MessageSuggestions,
    ParseResult,
    Provider,
    ProviderError,
    ProviderTransientError,
)

RETRYABLE_STATUS_CODES = [408, 429, 500, 502, 503, 504]
Answer = TypeVar("Answer", bound=BaseModel)

# ---- The rule format as a response schema (two levels: a group may hold one level of groups).

# Built from FIELDS, so the schema follows the rule format (mypy cannot see dynamic members).
RuleField = enum.Enum("RuleField", {spec.key: spec.key for spec in FIELDS}, type=str)  # type: ignore[misc]
RuleOperator = enum.Enum(  # type: ignore[misc]
    "RuleOperator",
    {op.key: op.key for spec in FIELDS for op in spec.operators},
    type=str,
)


class RuleCondition(BaseModel):
    field: RuleField
    operator: RuleOperator
    value: float | str | list[float] | list[str] | None = None


class RuleSubgroup(BaseModel):
    match: Literal["all", "any"]
    conditions: list[RuleCondition]


class RuleTree(BaseModel):
    match: Literal["all", "any"]
    conditions: list[RuleCondition | RuleSubgroup]


class AudienceAnswer(BaseModel):
    rules: RuleTree
    explanation: str = Field(max_length=600)


# ---- Prompts.

INSIGHT_INSTRUCTIONS = f"""You are a careful marketing analyst for a direct-to-consumer shop.
You receive FACTS about one customer segment as JSON: the segment's figures and the same figures
for the whole customer base ("base"), indexes (segment / base), the recency and order-count
distributions, top cities and countries, and the order trend of the last 90 days against the 90
before. Money is in the "currency" of the facts. Shares are fractions (0.25 = 25%).
Write:
- headline: one sentence with the single most important thing about this segment.
- findings: 3 to 6 short sentences on what stands out against the base and what is at risk.
- recommendations: 2 to 4 concrete actions a marketer can take with this segment.
- suggested_message: one campaign message of at most {MESSAGE_MAX_LENGTH} characters that uses the
  placeholder {{{{ first_name }}}} and contains no numbers.
Use only numbers that appear in the facts (rounded for people); never invent a figure, a name or
a discount. Answer in JSON only."""

MESSAGES_INSTRUCTIONS = f"""You write short campaign messages for a direct-to-consumer shop.
You receive an OBJECTIVE and FACTS (aggregates about the target segment, as JSON).
Write exactly 3 different message variants for the objective, each at most
{MESSAGE_MAX_LENGTH} characters, each personalised with the placeholder {{{{ first_name }}}}.
Do not invent prices, discounts or figures that the objective or facts do not give.
Answer in JSON only."""

CAMPAIGN_SUMMARY_INSTRUCTIONS = """You are a careful marketing analyst for an online shop.
You receive FIGURES about one finished or sending campaign as JSON: its channel, the audience and
the customers excluded by reason, delivery counters and rates, and the revenue of recipients'
completed orders within "window_days" of their message against the revenue of a random holdout
that got nothing ("lift" is relative: 0.12 = +12%; null when it cannot be measured). Money is in
the "currency" of the figures. Rates and shares are fractions (0.25 = 25%). "window_closed" says
whether the attribution window is over.
Write:
- headline: one sentence with the single most important thing about how the campaign did.
- findings: 2 to 6 short sentences on delivery, buyers, revenue and the lift against the holdout.
- recommendations: 1 to 4 concrete next steps for the marketer.
A small holdout (under 30 customers) makes the lift mostly chance: say so rather than praise it.
Use only numbers that appear in the figures (rounded for people); never invent a figure, a name
or a discount. Answer in JSON only."""


def _fields_guide() -> str:
    lines = []
    for spec in FIELDS:
        operators = ", ".join(f"{op.key} ({op.value_kind})" for op in spec.operators)
        lines.append(f"- {spec.key} ({spec.type}): {operators}")
    return "\n".join(lines)


def _audience_instructions() -> str:
    return f"""You turn a marketer's description of an audience into segment rules for a CRM.
Rules are a group {{"match": "all"|"any", "conditions": [...]}} whose conditions are
{{"field", "operator", "value"}} or nested groups (one level deep). Fields and operators
(with the kind of value each takes):
{_fields_guide()}
Values: money and numbers as numbers; days as whole numbers; dates as YYYY-MM-DD; "range" is
[low, high]; "list" is a list of strings; "none" means no value. Today is
{today_in_zone().isoformat()}; money is in {shop_currency()}. "and" binds
tighter than "or". Only express what the text asks for. If part of the text cannot be expressed
with these fields, leave it out and say so in "explanation"; never guess. "explanation" says in
one or two sentences what the rules select. Answer in JSON only."""


class GeminiProvider(Provider):
    name = "gemini"

    @property
    def model(self) -> str:
        return str(settings.GEMINI_MODEL)

    def insight(self, facts: dict[str, Any]) -> InsightContent:
        return self._generate(
            instructions=INSIGHT_INSTRUCTIONS,
            prompt=f"FACTS:\n{json.dumps(facts, ensure_ascii=False)}",
            schema=InsightContent,
        )

    def parse_audience(self, text: str) -> ParseResult:
        answer = self._generate(
            instructions=_audience_instructions(), prompt=text, schema=AudienceAnswer
        )
        rules = answer.rules.model_dump(mode="json", exclude_none=True)
        return ParseResult(rules=rules, explanation=answer.explanation)

    def suggest_messages(self, facts: dict[str, Any], objective: str) -> list[str]:
        answer = self._generate(
            instructions=MESSAGES_INSTRUCTIONS,
            prompt=f"OBJECTIVE: {objective}\nFACTS:\n{json.dumps(facts, ensure_ascii=False)}",
            schema=MessageSuggestions,
        )
        too_long = [message for message in answer.messages if len(message) > MESSAGE_MAX_LENGTH]
        if too_long:
            raise ProviderError(
                f"Gemini wrote a message longer than {MESSAGE_MAX_LENGTH} characters."
            )
        return answer.messages

    def campaign_summary(self, figures: dict[str, Any]) -> CampaignSummaryContent:
        return self._generate(
            instructions=CAMPAIGN_SUMMARY_INSTRUCTIONS,
            prompt=f"FIGURES:\n{json.dumps(figures, ensure_ascii=False)}",
            schema=CampaignSummaryContent,
        )

    def _client(self) -> genai.Client:
        timeout_seconds = float(settings.GEMINI_TIMEOUT_SECONDS)
        initial_delay = float(settings.GEMINI_RETRY_INITIAL_DELAY)
        options = types.HttpOptions(
            base_url=settings.GEMINI_BASE_URL or None,
            timeout=int(timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(
                attempts=int(settings.GEMINI_RETRY_ATTEMPTS),
                initial_delay=initial_delay,
                max_delay=max(initial_delay * 8, 1.0),
                exp_base=2,
                jitter=min(initial_delay, 1.0),
                http_status_codes=RETRYABLE_STATUS_CODES,
            ),
        )
        return genai.Client(api_key=settings.GEMINI_API_KEY, http_options=options)

    def _generate(self, *, instructions: str, prompt: str, schema: type[Answer]) -> Answer:
        config = types.GenerateContentConfig(
            system_instruction=instructions,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=0.4,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        try:
            with self._client() as client:
                response = client.models.generate_content(
                    model=self.model, contents=prompt, config=config
                )
        except errors.APIError as error:
            detail = f"{error.code} {error.status or ''}".strip()
            if error.code in RETRYABLE_STATUS_CODES:
                raise ProviderTransientError(
                    f"Gemini is unavailable ({detail}): {error.message or 'no details'}"
                ) from error
            raise ProviderError(
                f"Gemini refused the request ({detail}): {error.message or 'no details'}"
            ) from error
        except httpx2.TimeoutException as error:
            raise ProviderTransientError(
                f"Gemini did not answer within {settings.GEMINI_TIMEOUT_SECONDS:g} seconds."
            ) from error
        except httpx2.TransportError as error:
            raise ProviderTransientError(f"Could not reach Gemini: {error}") from error
        except (errors.UnknownApiResponseError, json.JSONDecodeError) as error:
            raise ProviderError(f"Gemini sent a response that is not JSON: {error}") from error
        return _read_answer(response, schema)


def _read_answer(response: types.GenerateContentResponse, schema: type[Answer]) -> Answer:
    text = response.text
    if not text:
        reason = "unknown"
        if response.candidates and response.candidates[0].finish_reason:
            reason = str(response.candidates[0].finish_reason.value)
        raise ProviderError(f"Gemini returned no content (finish reason: {reason}).")
    try:
        return schema.model_validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise ProviderError(f"Gemini returned malformed JSON ({where}: {first['msg']}).") from error
