"""Delivery channels: each sends a batch of rendered messages and says what became of each."""

from .base import Channel, ChannelSetupError, Message, Outcome, Sender
from .email import EmailChannel
from .log import LogChannel
from .webhook import WebhookChannel

__all__ = ["Channel", "ChannelSetupError", "Message", "Outcome", "Sender", "channel_for"]


def channel_for(name: str) -> Channel:
    if name == "log":
        return LogChannel()
    if name == "email":
        return EmailChannel()
    if name == "webhook":
        return WebhookChannel()
    raise ValueError(f"Unknown channel {name!r}")
