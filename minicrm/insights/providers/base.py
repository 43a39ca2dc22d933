"""The one interface every AI provider implements, with the shapes it returns and its errors."""

from abc import ABC, abstractmethod
from typing import Any

from ..content import (
    MESSAGE_MAX_LENGTH,
    MESSAGE_VARIANTS,
    CampaignSummaryContent,
    InsightContent,
    MessageSuggestions,
    ParseResult,
)

__all__ = [
    "MESSAGE_MAX_LENGTH",
    "MESSAGE_VARIANTS",
    "CampaignSummaryContent",
    "InsightContent",
    "MessageSuggestions",
    "ParseResult",
    "Provider",
    "ProviderError",
    "ProviderTransientError",
]


class ProviderError(Exception):
    """The provider could not answer; `message` is safe to show to the user."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderTransientError(ProviderError):
    """Rate limits, server errors and timeouts: worth trying again later."""

    transient = True


class Provider(ABC):
    """Turns facts into content, text into rules, facts plus an objective into messages, and a
    campaign's aggregates into a performance summary."""

    name: str

    @property
    @abstractmethod
    def model(self) -> str: ...

    @abstractmethod
    def insight(self, facts: dict[str, Any]) -> InsightContent: ...

    @abstractmethod
    def parse_audience(self, text: str) -> ParseResult: ...

    @abstractmethod
    def suggest_messages(self, facts: dict[str, Any], objective: str) -> list[str]: ...

    @abstractmethod
    def campaign_summary(self, figures: dict[str, Any]) -> CampaignSummaryContent:
        """A campaign's performance in words, from its aggregates (counters, rates, revenue,
        lift, exclusions): plain data from the caller, never a customer's details."""
