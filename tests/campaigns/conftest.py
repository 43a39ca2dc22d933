"""Shared fixtures of the campaign tests: a segment of everyone, drafts, a fake messaging vendor
(a real HTTP server on 127.0.0.1) and a real SMTP server (aiosmtpd) on 127.0.0.1."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from minicrm.campaigns.models import Campaign
from minicrm.campaigns.services import campaign_create
from minicrm.campaigns.signing import SIGNATURE_HEADER, signature_valid
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

VENDOR_SECRET = "test-vendor-secret"


@pytest.fixture
def everyone(db: None) -> Segment:
    """A segment whose members are all customers."""
    return segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=None
    )


def campaign_draft(segment: Segment, **values: Any) -> Campaign:
    """A draft campaign to `segment` (the log channel unless told)."""
    fields = {
        "name": "Spring",
        "segment_id": segment.pk,
        "subject": "Hello {{ first_name | default('there') }}",
        "template": "Hi {{ first_name }}, leave: {{ unsubscribe_url }}",
    }
    return campaign_create(created_by=None, **(fields | values))


# --- A fake messaging vendor ----------------------------------------------------------------

# What the vendor does with a batch: "accept" (accepts every id but the rejected), an HTTP
# status to answer with, or "timeout" (answers only after the client gave up).
Answer = str | int


@dataclass
class FakeVendor:
    """Records every batch it receives; answers from `script` in order, then `then`."""

    url: str
    script: list[Answer] = field(default_factory=list)
    then: Answer = "accept"
    reject: dict[int, str] = field(default_factory=dict)
    leave_out: set[int] = field(default_factory=set)
    hold_seconds: float = 2.0
    batches: list[list[int]] = field(default_factory=list)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes, signature: str | None) -> tuple[int, bytes]:
        if not signature_valid(body, signature, VENDOR_SECRET):
            with self.lock:
                self.bad_signatures += 1
            return 401, b'{"detail": "bad signature"}'
        messages = json.loads(body)["messages"]
        with self.lock:
            self.batches.append([message["delivery_id"] for message in messages])
            for message in messages:
                self.messages[message["delivery_id"]] = message
            what = self.script.pop(0) if self.script else self.then
        if what == "timeout":
            time.sleep(self.hold_seconds)
            return 200, b'{"accepted": [], "rejected": []}'
        if isinstance(what, int):
            return what, f'{{"detail": "vendor says {what}"}}'.encode()
        accepted = [
            {"delivery_id": m["delivery_id"], "vendor_id": f"v-{m['delivery_id']}"}
            for m in messages
            if m["delivery_id"] not in self.reject and m["delivery_id"] not in self.leave_out
        ]
        rejected = [
            {"delivery_id": m["delivery_id"], "reason": self.reject[m["delivery_id"]]}
            for m in messages
            if m["delivery_id"] in self.reject
        ]
        return 200, json.dumps({"accepted": accepted, "rejected": rejected}).encode()


def _vendor_handler(vendor: FakeVendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the channel expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, answer = vendor.answer(body, self.headers.get(SIGNATURE_HEADER))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                # The client gave up waiting (the timeout case): nobody reads the answer.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@pytest.fixture
def fake_vendor(settings: Any) -> Iterator[FakeVendor]:
    """A vendor on 127.0.0.1 (ephemeral port) that the webhook channel is pointed at."""
    vendor = FakeVendor(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _vendor_handler(vendor))
    server.daemon_threads = True
    vendor.url = f"http://127.0.0.1:{server.server_address[1]}/batches"
    thread = threading.Thread(target=server.serve_forever, name="fake vendor", daemon=True)
    thread.start()
    settings.MINICRM_WEBHOOK_URL = vendor.url
    settings.MINICRM_WEBHOOK_SECRET = VENDOR_SECRET
    settings.MINICRM_WEBHOOK_TIMEOUT_SECONDS = 0.5
    try:
        yield vendor
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- A real SMTP server ---------------------------------------------------------------------


@dataclass
class SmtpInbox:
    """What the SMTP server received; `answers` (one per message, in order) can refuse some:
    an SMTP reply such as "451 4.3.0 try later" instead of "250 OK"."""

    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    refuse: Callable[[str], str | None] = field(default=lambda to: None)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for to in envelope.rcpt_tos:
            refusal = self.refuse(to)
            if refusal:
                self.answers.append(refusal)
                return refusal
        content = envelope.original_content or b""
        self.received.append(message_from_bytes(content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append(list(envelope.rcpt_tos))
        self.answers.append("250 OK")
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """aiosmtpd's controller bound to port 0: it reads the port the system gave it."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_inbox(settings: Any) -> Iterator[SmtpInbox]:
    inbox = SmtpInbox()
    controller = _EphemeralController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    inbox.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield inbox
    finally:
        controller.stop()
