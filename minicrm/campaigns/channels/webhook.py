"""The `webhook` channel: the vendor contract of docs/design.md ("Campaign delivery").

A batch is one signed POST of `{"messages": [...]}`; the vendor answers which delivery ids it
accepted (with its own id, for receipts) and which it rejected (with a reason). `delivery_id`
is the idempotency key: a batch sent again (after a timeout or a crash) carries the same ids.
5xx, 429, timeouts and refused connections are retried; any other answer fails the batch with
the vendor's words. The connection is kept alive between batches (stdlib http.client).
"""

import http.client
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from ..signing import SIGNATURE_HEADER, sign
from .base import ChannelSetupError, Message, Outcome, Sender, all_with

MAX_REASON_CHARS = 300
NOT_ANSWERED = "The vendor did not answer for this delivery."

_connections = threading.local()


def _reason(text: object) -> str:
    return str(text)[:MAX_REASON_CHARS]


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    """This thread's kept-alive connection to the vendor (a new one if the URL changed)."""
    cached = getattr(_connections, "by_url", None)
    if cached is not None and cached[0] == (url, timeout):
        return cached[1]
    if cached is not None:
        cached[1].close()
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    _connections.by_url = ((url, timeout), connection)
    return connection


def _forget_connection() -> None:
    cached = getattr(_connections, "by_url", None)
    if cached is not None:
        cached[1].close()
        _connections.by_url = None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def outcomes_of_answer(messages: Sequence[Message], answer: Any) -> list[Outcome]:
    """Each message's outcome from the vendor's 200 answer; one it left out has failed."""
    accepted: dict[int, str] = {}
    rejected: dict[int, str] = {}
    if isinstance(answer, dict):
        for entry in answer.get("accepted") or []:
            if isinstance(entry, dict) and isinstance(entry.get("delivery_id"), int):
                vendor_id = entry.get("vendor_id")
                accepted[entry["delivery_id"]] = str(vendor_id)[:100] if vendor_id else ""
        for entry in answer.get("rejected") or []:
            if isinstance(entry, dict) and isinstance(entry.get("delivery_id"), int):
                reason = entry.get("reason") or "Rejected by the vendor (no reason given)."
                rejected[entry["delivery_id"]] = _reason(reason)
    outcomes = []
    for message in messages:
        delivery_id = message.delivery_id
        if delivery_id in accepted:
            outcomes.append(Outcome(delivery_id, "sent", vendor_id=accepted[delivery_id] or None))
        elif delivery_id in rejected:
            outcomes.append(Outcome(delivery_id, "failed", reason=rejected[delivery_id]))
        else:
            outcomes.append(Outcome(delivery_id, "failed", reason=NOT_ANSWERED))
    return outcomes


def batch_body(messages: Sequence[Message]) -> bytes:
    return json.dumps(
        {
            "messages": [
                {
                    "delivery_id": message.delivery_id,
                    "channel": message.channel,
                    "to": message.to,
                    "subject": message.subject,
                    "body": message.body,
                }
                for message in messages
            ]
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


class _WebhookSender:
    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url, self.secret, self.timeout = url, secret, timeout

    def _post(self, body: bytes) -> tuple[int, bytes]:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
        }
        # A kept-alive connection the vendor closed meanwhile fails at once: one fresh try.
        for fresh_try in (False, True):
            connection = _connection(self.url, self.timeout)
            reused = connection.sock is not None
            try:
                connection.request("POST", _path(self.url), body=body, headers=headers)
                response = connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                _forget_connection()
                if reused and not fresh_try:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                _forget_connection()
                raise
            if response.will_close:
                _forget_connection()
            return response.status, content
        raise AssertionError("unreachable: the fresh try returns or raises")

    def send(self, messages: Sequence[Message]) -> list[Outcome]:
        if not messages:
            return []
        try:
            status, content = self._post(batch_body(messages))
        except TimeoutError:
            return list(all_with(messages, "retry", "The vendor did not answer in time."))
        except (OSError, http.client.HTTPException) as error:
            return list(all_with(messages, "retry", _reason(f"Vendor unreachable: {error}")))
        snippet = content[:MAX_REASON_CHARS].decode(errors="replace")
        if status == 429 or status >= 500:
            reason = _reason(f"The vendor answered {status}: {snippet}")
            return list(all_with(messages, "retry", reason))
        if not 200 <= status < 300:
            reason = _reason(f"The vendor refused the batch ({status}): {snippet}")
            return list(all_with(messages, "failed", reason))
        try:
            answer = json.loads(content)
        except ValueError:
            reason = _reason(f"The vendor's answer is not JSON: {snippet}")
            return list(all_with(messages, "retry", reason))
        return outcomes_of_answer(messages, answer)


class WebhookChannel:
    name = "webhook"

    def check_setup(self) -> None:
        missing = [
            name
            for name in ("MINICRM_WEBHOOK_URL", "MINICRM_WEBHOOK_SECRET")
            if not getattr(settings, name, "")
        ]
        if missing:
            raise ChannelSetupError(
                f"The webhook channel needs {' and '.join(missing)} set in the server's settings."
            )
        if urlsplit(settings.MINICRM_WEBHOOK_URL).scheme not in {"http", "https"}:
            raise ChannelSetupError("MINICRM_WEBHOOK_URL must be an http:// or https:// URL.")

    @contextmanager
    def opened(self) -> Iterator[Sender]:
        self.check_setup()
        yield _WebhookSender(
            settings.MINICRM_WEBHOOK_URL,
            settings.MINICRM_WEBHOOK_SECRET,
            float(settings.MINICRM_WEBHOOK_TIMEOUT_SECONDS),
        )
