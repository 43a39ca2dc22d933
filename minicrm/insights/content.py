"""What providers return: insight content, message suggestions, parsed text (plain data)."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

MESSAGE_MAX_LENGTH = 200
MESSAGE_VARIANTS = 3


class InsightContent(BaseModel):
    """What a provider writes about a segment; every number in it comes from the facts."""

    headline: str = Field(min_length=1, max_length=240)
    findings: list[str] = Field(min_length=3, max_length=6)
    recommendations: list[str] = Field(min_length=2, max_length=4)
    suggested_message: str = Field(min_length=1, max_length=MESSAGE_MAX_LENGTH)


class CampaignSummaryContent(BaseModel):
    """What a provider writes about a campaign's performance, from its aggregates only."""

    headline: str = Field(min_length=1, max_length=240)
    findings: list[str] = Field(min_length=2, max_length=6)
    recommendations: list[str] = Field(min_length=1, max_length=4)


class MessageSuggestions(BaseModel):
    messages: list[str] = Field(min_length=MESSAGE_VARIANTS, max_length=MESSAGE_VARIANTS)


@dataclass(frozen=True)
class ParseResult:
    """Rules as plain JSON (not yet validated) and a sentence saying what was understood."""

    rules: dict[str, Any]
    explanation: str
    unparsed: list[str] = field(default_factory=list)
