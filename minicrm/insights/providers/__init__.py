"""AI providers behind one interface, chosen by settings at call time (`get_provider`).

The Gemini provider is imported only when it is used: google-genai takes 1-2 s to import, which
every `manage.py` command and every offline process would otherwise pay.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings

from .base import (
    CampaignSummaryContent,
    InsightContent,
    MessageSuggestions,
    ParseResult,
    Provider,
    ProviderError,
    ProviderTransientError,
)
from .offline import OfflineProvider

if TYPE_CHECKING:
    from .gemini import GeminiProvider

__all__ = [
    "CampaignSummaryContent",
    "GeminiProvider",
    "InsightContent",
    "MessageSuggestions",
    "OfflineProvider",
    "ParseResult",
    "Provider",
    "ProviderError",
    "ProviderTransientError",
    "get_provider",
]


def __getattr__(name: str) -> Any:
    """`GeminiProvider`, imported on first use (PEP 562)."""
    if name == "GeminiProvider":
        return _gemini_provider()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gemini_provider() -> "type[GeminiProvider]":
    provider: type[GeminiProvider] = import_module(f"{__name__}.gemini").GeminiProvider
    return provider


def get_provider() -> Provider:
    """The provider named by `AI_PROVIDER` (`offline` or `gemini`), read now, not at import."""
    name = (settings.AI_PROVIDER or "").lower()
    if name == "gemini":
        if not settings.GEMINI_API_KEY:
            raise ProviderError("AI_PROVIDER is gemini but GEMINI_API_KEY is not set.")
        return _gemini_provider()()
    if name == "offline":
        return OfflineProvider()
    raise ProviderError(f"Unknown AI_PROVIDER {settings.AI_PROVIDER!r}: use offline or gemini.")
