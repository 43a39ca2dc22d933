"""The `log` channel: records each message as sent and sends nothing (the default channel)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .base import Message, Outcome, Sender


class _LogSender:
    def send(self, messages: Sequence[Message]) -> list[Outcome]:
        # No vendor, so no vendor id: receipts never reach a logged message.
        return [Outcome(message.delivery_id, "sent") for message in messages]


class LogChannel:
    name = "log"

    def check_setup(self) -> None:
        return None

    @contextmanager
    def opened(self) -> Iterator[Sender]:
        yield _LogSender()
