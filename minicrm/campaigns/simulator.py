"""A messaging vendor on 127.0.0.1 for development, tests and the benchmark (`vendor_simulator`).

It implements the vendor's side of the webhook contract (docs/design.md, "Campaign delivery"):
a signed POST of `{"messages": [...]}` to /messages is answered with the accepted delivery ids
(each with a vendor id) and the rejected ones (with a reason); a batch whose signature is wrong
is a 401. `delivery_id` is the idempotency key: an id seen before gets the same vendor id back
and is counted as a repeat, never as a second message, and gets no second receipt.

After `receipt_delay` seconds each message's receipt is posted back, signed, in batches of up to
`receipt_batch_size`, to the CRM's receipts URL: about `failure_percent` % failed, the rest
delivered, chosen from the delivery id and the seed so that a run can be repeated exactly. The
CRM answers only how many receipts were `unknown` (it may not have written the vendor id down
yet), not which: a batch with any unknown is posted again whole a little later (the others come
back as duplicates, which is harmless), a few times at most. GET /stats answers the counts;
POST /flush posts every waiting receipt now (a test or the benchmark deciding when they go).
"""

import hashlib
import heapq
import http.client
import itertools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .signing import SIGNATURE_HEADER, sign, signature_valid

logger = logging.getLogger(__name__)

MESSAGES_PATH = "/messages"
STATS_PATH = "/stats"
FLUSH_PATH = "/flush"
# A vendor bounds what it reads per request; the CRM sends MINICRM_DELIVERY_BATCH_SIZE (500).
MAX_BATCH_MESSAGES = 10_000
MAX_BODY_BYTES = 50 * 1024 * 1024
# The receipts endpoint takes at most 10,000 receipts per batch (receipts.MAX_RECEIPTS_PER_BATCH).
MAX_RECEIPT_BATCH = 10_000
FAILURE_REASONS = (
    "Mailbox full.",
    "Unknown recipient.",
    "Blocked as spam by the recipient's server.",
)
RECEIPTS_TIMEOUT_SECONDS = 60.0
# What became of a delivery id's receipt.
OWED, ACKNOWLEDGED, LOST = "owed", "acknowledged", "lost"


@dataclass(frozen=True)
class SimulatorSettings:
    secret: str
    # Where receipts go; empty: none are posted (the benchmark's bare run).
    receipts_url: str = ""
    receipt_delay: float = 1.0
    failure_percent: float = 10.0
    seed: int = 0
    receipt_batch_size: int = 1_000
    # Posts of one receipt batch in all (unknown receipts, a CRM that is down or busy), waiting
    # retry_delay, then twice as long each time.
    receipt_attempts: int = 5
    retry_delay: float = 2.0
    # Delivery ids remembered for deduplication (the oldest are forgotten past it).
    max_remembered: int = 1_000_000


@dataclass
class SimulatorStats:
    batches: int = 0
    messages: int = 0  # accepted, each delivery id once
    repeats: int = 0  # accepted again: an id already seen (a batch re-sent after a crash)
    rejected: int = 0
    refused_batches: int = 0  # a wrong signature or shape: the whole batch refused
    receipt_requests: int = 0
    receipts_posted: int = 0  # receipts in those requests (a batch posted again counts again)
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0
    stale: int = 0
    gave_up: int = 0  # receipts never acknowledged after every attempt
    queued: int = 0  # receipts waiting for their time (or their retry)
    in_flight: int = 0  # receipts in a request being answered
    receipt_seconds: float = 0.0  # time spent waiting for the CRM's answers
    first_receipt_at: float | None = None  # epoch seconds of the first receipts request
    last_receipt_at: float | None = None  # epoch seconds of the last answer


def vendor_id_for(delivery_id: int, seed: int) -> str:
    """The vendor's id for a delivery: opaque, and the same every time for the same id."""
    digest = hashlib.sha256(f"vendor-id:{seed}:{delivery_id}".encode()).hexdigest()
    return f"sim-{digest[:20]}"


def receipt_outcome(delivery_id: int, seed: int, failure_percent: float) -> tuple[str, str]:
    """(status, reason) of a delivery's receipt, drawn from the id and the seed."""
    digest = hashlib.sha256(f"receipt:{seed}:{delivery_id}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64 * 100
    if draw < failure_percent:
        return "failed", FAILURE_REASONS[digest[8] % len(FAILURE_REASONS)]
    return "delivered", ""


@dataclass(order=True)
class _ReceiptBatch:
    due: float
    sequence: int
    receipts: list[dict[str, Any]] = field(compare=False)
    delivery_ids: list[int] = field(compare=False)
    attempt: int = field(default=1, compare=False)


class BatchRefusedError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _messages_of(body: bytes) -> list[Any]:
    """The batch's messages; raises BatchRefusedError (400) for a body not in the contract's
    shape. Each message's own problems are rejections, answered per delivery id."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BatchRefusedError(400, "The body is not JSON.") from None
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list):
        raise BatchRefusedError(400, 'The body is {"messages": [...]}.')
    if len(messages) > MAX_BATCH_MESSAGES:
        raise BatchRefusedError(413, f"At most {MAX_BATCH_MESSAGES:,} messages per batch.")
    for index, message in enumerate(messages):
        delivery_id = message.get("delivery_id") if isinstance(message, dict) else None
        if not isinstance(delivery_id, int) or isinstance(delivery_id, bool):
            raise BatchRefusedError(400, f"messages[{index}].delivery_id must be an integer.")
    return messages


def _rejection(message: dict[str, Any]) -> str:
    """Why the vendor cannot take this message ("" if it can)."""
    if not isinstance(message.get("to"), str) or not message["to"].strip():
        return "No recipient address."
    if not isinstance(message.get("body"), str) or not message["body"]:
        return "No message body."
    return ""


class VendorSimulator:
    """The vendor: an HTTP server for batches, and a thread posting receipts back."""

    def __init__(self, settings: SimulatorSettings, *, host: str = "127.0.0.1", port: int = 0):
        if not settings.secret:
            raise ValueError("The simulator needs the webhook secret to check and sign bodies.")
        if not 1 <= settings.receipt_batch_size <= MAX_RECEIPT_BATCH:
            raise ValueError(f"A receipt batch holds 1 to {MAX_RECEIPT_BATCH:,} receipts.")
        self.settings = settings
        self.stats = SimulatorStats()
        self._lock = threading.Condition()
        # Delivery id -> its receipt's state: owed (waiting or in flight), acknowledged, or lost
        # (never acknowledged after every attempt; a repeat of the id owes it again).
        self._seen: OrderedDict[int, str] = OrderedDict()
        self._waiting: list[_ReceiptBatch] = []
        self._sequence = itertools.count()
        self._stopping = False
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.simulator = self  # type: ignore[attr-defined]
        self._threads: list[threading.Thread] = []
        self._connection: http.client.HTTPConnection | None = None

    # --- Running --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def messages_url(self) -> str:
        return f"http://{self.host}:{self.port}{MESSAGES_PATH}"

    def start(self) -> "VendorSimulator":
        server = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="vendor-http"
        )
        poster = threading.Thread(target=self._post_receipts_loop, name="vendor-receipts")
        self._threads = [server, poster]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=RECEIPTS_TIMEOUT_SECONDS)
        if self._connection is not None:
            self._connection.close()

    def __enter__(self) -> "VendorSimulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self.stats)

    def receipts_due_now(self) -> None:
        """Post every waiting receipt now (a test or the benchmark deciding when they go)."""
        with self._lock:
            now = time.time()
            for batch in self._waiting:
                batch.due = min(batch.due, now)
            heapq.heapify(self._waiting)
            self._lock.notify_all()

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until no receipt is waiting or in flight; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.stats.queued or self.stats.in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(timeout=left)
        return True

    # --- Batches in -----------------------------------------------------------------------
    def batch_answer(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON answer to one POSTed batch."""
        if not signature_valid(body, signature, self.settings.secret):
            with self._lock:
                self.stats.refused_batches += 1
            return 401, {"detail": f"The {SIGNATURE_HEADER} header does not match the body."}
        try:
            messages = _messages_of(body)
        except BatchRefusedError as refused:
            with self._lock:
                self.stats.refused_batches += 1
            return refused.status, {"detail": refused.detail}
        accepted, rejected, ids = [], [], []
        for message in messages:
            delivery_id = message["delivery_id"]
            reason = _rejection(message)
            if reason:
                rejected.append({"delivery_id": delivery_id, "reason": reason})
                continue
            vendor_id = vendor_id_for(delivery_id, self.settings.seed)
            accepted.append({"delivery_id": delivery_id, "vendor_id": vendor_id})
            ids.append(delivery_id)
        with self._lock:
            new, owed = self._remember(ids)
            self.stats.batches += 1
            self.stats.messages += new
            self.stats.repeats += len(accepted) - new
            self.stats.rejected += len(rejected)
            self._queue_receipts(owed)
        logger.info(
            "Batch of %s: %s accepted (%s repeated), %s rejected",
            len(messages),
            len(accepted),
            len(accepted) - new,
            len(rejected),
        )
        return 200, {"accepted": accepted, "rejected": rejected}

    def _remember(self, delivery_ids: Sequence[int]) -> tuple[int, list[int]]:
        """How many ids are new, and the ids that need a receipt: new ones, and repeats whose
        receipt was lost (the CRM may have lost the vendor id in a crash and re-sent the
        batch). Under the lock."""
        new, owed = 0, []
        for delivery_id in dict.fromkeys(delivery_ids):  # an id twice in one batch: once
            state = self._seen.get(delivery_id)
            new += state is None
            if state is None or state == LOST:
                owed.append(delivery_id)
                self._seen[delivery_id] = OWED
            self._seen.move_to_end(delivery_id)
        while len(self._seen) > self.settings.max_remembered:
            self._seen.popitem(last=False)
        return new, owed

    def _queue_receipts(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        if not self.settings.receipts_url:
            for delivery_id in delivery_ids:
                self._seen[delivery_id] = ACKNOWLEDGED
            return
        at = datetime.now(UTC)
        receipts = []
        for delivery_id in delivery_ids:
            status, reason = receipt_outcome(
                delivery_id, self.settings.seed, self.settings.failure_percent
            )
            receipt = {"vendor_id": vendor_id_for(delivery_id, self.settings.seed)}
            receipt |= {"status": status, "at": at.isoformat()}
            if reason:
                receipt["reason"] = reason
            receipts.append(receipt)
        due = time.time() + self.settings.receipt_delay
        batch = _ReceiptBatch(due, next(self._sequence), receipts, list(delivery_ids))
        heapq.heappush(self._waiting, batch)
        self.stats.queued += len(receipts)
        self._lock.notify_all()

    # --- Receipts out ---------------------------------------------------------------------
    def _next_receipts(self) -> _ReceiptBatch | None:
        """Everything due, up to one receipt batch (waits for the first to be due)."""
        with self._lock:
            while not self._stopping:
                now = time.time()
                if self._waiting and self._waiting[0].due <= now:
                    break
                timeout = self._waiting[0].due - now if self._waiting else None
                self._lock.wait(timeout=timeout)
            if self._stopping:
                return None
            taken = heapq.heappop(self._waiting)
            limit = self.settings.receipt_batch_size
            # Merge further due batches of first attempts into this one, up to the limit.
            while (
                self._waiting
                and self._waiting[0].due <= now
                and taken.attempt == self._waiting[0].attempt == 1
                and len(taken.receipts) + len(self._waiting[0].receipts) <= limit
            ):
                more = heapq.heappop(self._waiting)
                taken.receipts += more.receipts
                taken.delivery_ids += more.delivery_ids
            if len(taken.receipts) > limit:
                rest = _ReceiptBatch(
                    taken.due,
                    taken.sequence,
                    taken.receipts[limit:],
                    taken.delivery_ids[limit:],
                    taken.attempt,
                )
                heapq.heappush(self._waiting, rest)
                taken.receipts, taken.delivery_ids = (
                    taken.receipts[:limit],
                    taken.delivery_ids[:limit],
                )
            self.stats.queued -= len(taken.receipts)
            self.stats.in_flight += len(taken.receipts)
            return taken

    def _post_receipts_loop(self) -> None:
        while (batch := self._next_receipts()) is not None:
            try:
                self._post_receipts(batch)
            except Exception:  # the poster must outlive one bad answer; it is logged
                logger.exception("Receipts: posting a batch failed")
                with self._lock:
                    self.stats.in_flight -= len(batch.receipts)
                    self.stats.gave_up += len(batch.receipts)
                    self._lock.notify_all()

    def _post_receipts(self, batch: _ReceiptBatch) -> None:
        body = json.dumps({"receipts": batch.receipts}, separators=(",", ":")).encode()
        attempt = batch.attempt
        started = time.time()
        status, answer, problem = self._post(body)
        finished = time.time()
        counts = {name: 0 for name in ("applied", "duplicate", "unknown", "stale")}
        if status == 200 and isinstance(answer, dict):
            counts |= {k: int(answer.get(k) or 0) for k in counts}
        retry = problem or status in (429, 503) or status >= 500 or counts["unknown"] > 0
        with self._lock:
            stats = self.stats
            stats.receipt_requests += 1
            stats.receipts_posted += len(batch.receipts)
            stats.receipt_seconds += finished - started
            stats.first_receipt_at = stats.first_receipt_at or started
            stats.last_receipt_at = finished
            for name, how_many in counts.items():
                setattr(stats, name, getattr(stats, name) + how_many)
            stats.in_flight -= len(batch.receipts)
            if retry and batch.attempt < self.settings.receipt_attempts:
                delay = self.settings.retry_delay * 2 ** (batch.attempt - 1)
                batch.due, batch.attempt = time.time() + delay, batch.attempt + 1
                heapq.heappush(self._waiting, batch)
                stats.queued += len(batch.receipts)
            else:
                acknowledged = status == 200 and not counts["unknown"]
                if not acknowledged:
                    stats.gave_up += len(batch.receipts) if status != 200 else counts["unknown"]
                for delivery_id in batch.delivery_ids:
                    if delivery_id in self._seen:
                        self._seen[delivery_id] = ACKNOWLEDGED if acknowledged else LOST
            self._lock.notify_all()
        logger.info(
            "Receipts: %s posted (attempt %s): %s",
            len(batch.receipts),
            attempt,
            problem or (f"answered {status}" if status != 200 else json.dumps(counts)),
        )

    def _post(self, body: bytes) -> tuple[int, Any, str]:
        """(status, JSON answer, problem) of one signed POST to the receipts URL."""
        url = urlsplit(self.settings.receipts_url)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.settings.secret),
        }
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        for fresh_try in (False, True):
            if self._connection is None:
                kind = (
                    http.client.HTTPSConnection
                    if url.scheme == "https"
                    else http.client.HTTPConnection
                )
                self._connection = kind(
                    url.hostname or "127.0.0.1", url.port, timeout=RECEIPTS_TIMEOUT_SECONDS
                )
            reused = self._connection.sock is not None
            try:
                self._connection.request("POST", path, body=body, headers=headers)
                response = self._connection.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as error:
                self._connection.close()
                self._connection = None
                if reused and not fresh_try:
                    continue  # the server closed the kept-alive connection meanwhile
                return 0, None, f"receipts URL unreachable: {error}"
            if response.will_close:
                self._connection.close()
                self._connection = None
            try:
                return response.status, json.loads(content), ""
            except ValueError:
                return response.status, None, ""
        raise AssertionError("unreachable: the fresh try returns")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the CRM's webhook channel expects
    timeout = 60  # seconds a connection may stall mid-request before it is dropped
    # The answer goes out as two writes (headers, body): with Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers, about 40 ms a batch.
    disable_nagle_algorithm = True
    server_version = "MiniCRMVendorSimulator/1"

    def do_POST(self) -> None:
        simulator: VendorSimulator = self.server.simulator  # type: ignore[attr-defined]
        if urlsplit(self.path).path == FLUSH_PATH:
            simulator.receipts_due_now()
            self._answer(200, {"queued": simulator.stats_snapshot()["queued"]})
            return
        if urlsplit(self.path).path != MESSAGES_PATH:
            self._answer(404, {"detail": f"POST batches to {MESSAGES_PATH}."})
            return
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._answer(411, {"detail": "Send a Content-Length."})
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(413, {"detail": f"At most {MAX_BODY_BYTES:,} bytes per batch."})
            self.close_connection = True
            return
        body = self.rfile.read(length)
        status, answer = simulator.batch_answer(body, self.headers.get(SIGNATURE_HEADER))
        self._answer(status, answer)

    def do_GET(self) -> None:
        if urlsplit(self.path).path != STATS_PATH:
            self._answer(404, {"detail": f"GET {STATS_PATH} for the counts."})
            return
        simulator: VendorSimulator = self.server.simulator  # type: ignore[attr-defined]
        self._answer(200, simulator.stats_snapshot())

    def _answer(self, status: int, answer: dict[str, Any]) -> None:
        content = json.dumps(answer, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator logs one line per batch itself (it runs under honcho)."""
