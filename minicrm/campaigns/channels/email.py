"""The `email` channel: Django's email backend (SMTP from settings), one connection per batch.

Every message carries the one-click unsubscribe of RFC 8058 (`List-Unsubscribe` with the signed
link, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`), which mail providers show as an
"Unsubscribe" button. SMTP answers 4xx for "try later" and 5xx for "never": the first is a
retry of that delivery, the second fails it with the server's answer as the reason.
"""

import smtplib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .base import Message, Outcome, Sender, all_with


def _answer(code: int, text: bytes | str) -> str:
    shown = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"SMTP {code}: {shown}"


def _outcome_of_answer(message: Message, code: int, text: bytes | str) -> Outcome:
    reason = _answer(code, text)
    if 400 <= code < 500:
        return Outcome(message.delivery_id, "retry", reason=reason)
    return Outcome(message.delivery_id, "failed", reason=reason)


class _EmailSender:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def _email(self, message: Message) -> EmailMessage:
        return EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
            headers={
                "List-Unsubscribe": f"<{message.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            connection=self.connection,
        )

    def send(self, messages: Sequence[Message]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for index, message in enumerate(messages):
            try:
                self._email(message).send(fail_silently=False)
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()), (550, b"recipient refused"))
                outcomes.append(_outcome_of_answer(message, code, text))
            except smtplib.SMTPResponseException as error:
                outcomes.append(_outcome_of_answer(message, error.smtp_code, error.smtp_error))
            except (smtplib.SMTPException, OSError) as error:
                # The connection is gone: this message and the rest wait for the next try.
                reason = f"SMTP server unreachable: {error}"
                outcomes.extend(all_with(messages[index:], "retry", reason))
                break
            else:
                outcomes.append(Outcome(message.delivery_id, "sent"))
        return outcomes


class _UnreachableSender:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, messages: Sequence[Message]) -> list[Outcome]:
        return list(all_with(messages, "retry", self.reason))


class EmailChannel:
    name = "email"

    def check_setup(self) -> None:
        return None

    @contextmanager
    def opened(self) -> Iterator[Sender]:
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except (smtplib.SMTPException, OSError) as error:
            yield _UnreachableSender(f"SMTP server unreachable: {error}")
            return
        try:
            yield _EmailSender(connection)
        finally:
            try:
                connection.close()
            except (smtplib.SMTPException, OSError):
                # Quitting a connection the server already dropped; the batch is done anyway.
                connection.connection = None
