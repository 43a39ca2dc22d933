"""AI providers behind one interface, chosen by settings at call time (`get_provider`)."""

from django.conf import settings

from .base import (
    InsightContent,
    MessageSuggestions,
    ParseResult,
    Provider,
    ProviderError,
    ProviderTransientError,
)
from .gemini import GeminiProvider
from .offline import OfflineProvider

__all__ = [
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


def get_provider() -> Provider:
    """The provider named by `AI_PROVIDER` (`offline` or `gemini`), read now, not at import."""
    name = (settings.AI_PROVIDER or "").lower()
    if name == "gemini":
        if not settings.GEMINI_API_KEY:
            raise ProviderError("AI_PROVIDER is gemini but GEMINI_API_KEY is not set.")
        return GeminiProvider()
    if name == "offline":
        return OfflineProvider()
    raise ProviderError(f"Unknown AI_PROVIDER {settings.AI_PROVIDER!r}: use offline or gemini.")
