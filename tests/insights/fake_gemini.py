"""A fake Gemini API on 127.0.0.1 speaking the `generateContent` REST shape the real SDK calls.

Tests queue responses (status, body, delay) and read back every request the SDK sent.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    raw: str

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)
        return body

    @property
    def prompt(self) -> str:
        return "".join(part["text"] for part in self.body["contents"][0]["parts"])


def answer(data: Any) -> Reply:
    """A successful answer whose text is `data` as JSON (or `data` itself when it is a str)."""
    text = data if isinstance(data, str) else json.dumps(data)
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20},
        "modelVersion": "gemini-test",
    }
    return Reply(200, json.dumps(body))


def error(status: int, reason: str, message: str) -> Reply:
    return Reply(
        status, json.dumps({"error": {"code": status, "message": message, "status": reason}})
    )


def slow(seconds: float) -> Reply:
    return Reply(200, json.dumps({"candidates": []}), delay=seconds)


class FakeGemini:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.replies: deque[Reply] = deque()
        self.default: Reply | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with fake._lock:
                    fake.requests.append(Seen(self.path, dict(self.headers), raw))
                    reply = fake.replies.popleft() if fake.replies else fake.default
                if reply is None:
                    reply = error(500, "INTERNAL", "The fake server has no reply queued.")
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away, as it should

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fake_gemini_serving(settings: Any, **overrides: Any) -> Iterator[FakeGemini]:
    """A running FakeGemini and the settings that point the real SDK at it (quick retries), plus
    `overrides` (setting name -> value); the server stops at the end."""
    server = FakeGemini()
    server.start()
    settings.AI_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = "test-key"
    settings.GEMINI_MODEL = "gemini-test"
    settings.GEMINI_BASE_URL = server.url
    settings.GEMINI_RETRY_INITIAL_DELAY = 0.01
    settings.INSIGHT_RETRY_BASE_SECONDS = 0.01
    for name, value in overrides.items():
        setattr(settings, name, value)
    try:
        yield server
    finally:
        server.stop()
