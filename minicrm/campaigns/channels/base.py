"""What every channel is: a batch of rendered messages in, one outcome per delivery out."""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

# sent: the channel took it; failed: it never will (the reason says why); retry: a transient
# failure (vendor down, SMTP 4xx) that the same delivery id may get past later.
OutcomeStatus = Literal["sent", "failed", "retry"]


@dataclass(frozen=True, slots=True)
class Message:
    delivery_id: int
    channel: str
    to: str
    subject: str
    body: str
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    status: OutcomeStatus
    vendor_id: str | None = None
    reason: str = ""


class ChannelSetupError(Exception):
    """The channel cannot send at all as configured (a setting is missing): the reason names it."""


class Sender(Protocol):
    def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """One outcome for every message, in any order; never raises for a delivery problem."""
        ...


class Channel(Protocol):
    name: str

    def check_setup(self) -> None:
        """Raise ChannelSetupError when a setting the channel needs is missing."""
        ...

    def opened(self) -> AbstractContextManager[Sender]:
        """A sender for one batch (one SMTP connection, one HTTP keep-alive connection)."""
        ...


def all_with(messages: Sequence[Message], status: OutcomeStatus, reason: str) -> Iterator[Outcome]:
    """The same outcome for every message (the whole batch failed, or is to be retried)."""
    for message in messages:
        yield Outcome(message.delivery_id, status, reason=reason)
