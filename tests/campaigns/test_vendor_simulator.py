"""The vendor simulator: the contract's vendor side over real HTTP on 127.0.0.1, deterministic
receipts, deduplication by delivery id, unknown receipts retried, and the loop with the CRM."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_create, campaign_send
from minicrm.campaigns.signing import SIGNATURE_HEADER, sign, signature_valid
from minicrm.campaigns.simulator import (
    FAILURE_REASONS,
    SimulatorSettings,
    VendorSimulator,
    receipt_outcome,
    vendor_id_for,
)
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]
SECRET = "simulator-test-secret"
WAIT_SECONDS = 30  # an upper bound for receipts to be posted; the tests poll, never sleep


# --- A recording receipts endpoint (for the tests that need no CRM) -----------------------------
@dataclass
class ReceiptsEndpoint:
    """Records every receipts request; answers from `script` in order (a dict of counts, where
    None means "all applied", or an HTTP status), then all applied."""

    url: str = ""
    script: list[dict[str, int] | int | None] = field(default_factory=list)
    requests: list[tuple[bool, list[dict[str, Any]]]] = field(default_factory=list)

    @property
    def receipts(self) -> list[dict[str, Any]]:
        return [receipt for _signed, batch in self.requests for receipt in batch]


@pytest.fixture
def endpoint() -> Iterator[ReceiptsEndpoint]:
    recorded = ReceiptsEndpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receipts = json.loads(body)["receipts"]
            signed = signature_valid(body, self.headers.get(SIGNATURE_HEADER), SECRET)
            recorded.requests.append((signed, receipts))
            answer = recorded.script.pop(0) if recorded.script else None
            status = answer if isinstance(answer, int) else 200
            counts = {"applied": len(receipts), "duplicate": 0, "unknown": 0, "stale": 0}
            content = json.dumps(answer if isinstance(answer, dict) else counts).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/deliveries/receipts"
    yield recorded
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def simulator_with(**values: Any) -> VendorSimulator:
    fields: dict[str, Any] = {"secret": SECRET, "receipt_delay": 0.0, "retry_delay": 0.01}
    return VendorSimulator(SimulatorSettings(**(fields | values)))


def post(
    simulator: VendorSimulator, body: bytes, signature: str | None = "sign", path: str = ""
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = sign(body, SECRET) if signature == "sign" else signature
    connection = http.client.HTTPConnection(simulator.host, simulator.port, timeout=10)
    try:
        connection.request(
            "POST", path or urlsplit(simulator.messages_url).path, body=body, headers=headers
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def batch(*ids: int, **overrides: Any) -> bytes:
    messages = [
        {"delivery_id": i, "channel": "webhook", "to": f"c{i}@example.com", "subject": "Hi"}
        | {"body": f"Hello {i}"}
        | overrides
        for i in ids
    ]
    return json.dumps({"messages": messages}).encode()


# --- Receipts are drawn, not random -------------------------------------------------------------
def test_receipt_outcomes_are_drawn_from_the_delivery_id_and_the_seed():
    outcomes = [receipt_outcome(i, seed=0, failure_percent=10) for i in range(1, 10_001)]
    failed = [reason for status, reason in outcomes if status == "failed"]

    assert outcomes == [receipt_outcome(i, seed=0, failure_percent=10) for i in range(1, 10_001)]
    assert 900 <= len(failed) <= 1100  # about 10 %
    assert set(failed) == set(FAILURE_REASONS)
    assert all(reason == "" for status, reason in outcomes if status == "delivered")
    other_seed = [receipt_outcome(i, seed=1, failure_percent=10) for i in range(1, 10_001)]
    assert other_seed != outcomes
    assert {receipt_outcome(i, 0, 0)[0] for i in range(1, 1_001)} == {"delivered"}
    assert {receipt_outcome(i, 0, 100)[0] for i in range(1, 1_001)} == {"failed"}


def test_vendor_ids_are_opaque_stable_and_distinct():
    ids = [vendor_id_for(i, seed=0) for i in range(1, 10_001)]

    assert ids == [vendor_id_for(i, seed=0) for i in range(1, 10_001)]
    assert len(set(ids)) == 10_000
    assert all(vendor_id.startswith("sim-") and len(vendor_id) <= 100 for vendor_id in ids)


# --- Batches ------------------------------------------------------------------------------------
def test_a_signed_batch_is_answered_with_vendor_ids_and_rejections():
    body = json.dumps(
        {
            "messages": [
                {"delivery_id": 1, "channel": "webhook", "to": "a@example.com", "body": "Hi"},
                {"delivery_id": 2, "channel": "webhook", "to": " ", "body": "Hi"},
                {"delivery_id": 3, "channel": "webhook", "to": "c@example.com", "body": ""},
            ]
        }
    ).encode()

    with simulator_with() as simulator:
        status, answer = post(simulator, body)
        stats = simulator.stats_snapshot()

    assert status == 200
    assert answer == {
        "accepted": [{"delivery_id": 1, "vendor_id": vendor_id_for(1, 0)}],
        "rejected": [
            {"delivery_id": 2, "reason": "No recipient address."},
            {"delivery_id": 3, "reason": "No message body."},
        ],
    }
    assert (stats["batches"], stats["messages"], stats["rejected"]) == (1, 1, 2)


@pytest.mark.parametrize(
    ("body", "signature", "path", "status"),
    [
        (batch(1), None, "", 401),
        (batch(1), "sha256=" + "0" * 64, "", 401),
        (batch(1), sign(batch(1), "another-secret"), "", 401),
        (batch(1), "sha256=é", "", 401),
        (b"{not json", "sign", "", 400),
        (b'{"messages": {}}', "sign", "", 400),
        (b'{"messages": [{"delivery_id": "1"}]}', "sign", "", 400),
        (b'{"messages": [{"delivery_id": true}]}', "sign", "", 400),
        (b"[]", "sign", "", 400),
        (batch(1), "sign", "/elsewhere", 404),
    ],
)
def test_a_badly_signed_or_shaped_batch_is_refused_whole(body, signature, path, status):
    with simulator_with() as simulator:
        answered, answer = post(simulator, body, signature=signature, path=path)
        stats = simulator.stats_snapshot()

    assert answered == status
    assert set(answer) == {"detail"}
    assert (stats["messages"], stats["queued"], stats["receipts_posted"]) == (0, 0, 0)


def test_stats_are_served_over_http():
    with simulator_with() as simulator:
        post(simulator, batch(1, 2))
        connection = http.client.HTTPConnection(simulator.host, simulator.port, timeout=10)
        connection.request("GET", "/stats")
        stats = json.loads(connection.getresponse().read())
        connection.close()

    assert (stats["batches"], stats["messages"]) == (1, 2)


# --- Receipts -----------------------------------------------------------------------------------
def test_receipts_are_posted_signed_in_batches_with_the_drawn_outcome(endpoint):
    ids = list(range(1, 8))
    with simulator_with(receipts_url=endpoint.url, receipt_batch_size=3) as simulator:
        post(simulator, batch(*ids))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    assert [len(receipts) for _signed, receipts in endpoint.requests] == [3, 3, 1]
    assert all(signed for signed, _receipts in endpoint.requests)
    expected = {}
    for i in ids:
        status, reason = receipt_outcome(i, 0, 10)
        expected[vendor_id_for(i, 0)] = (status, reason or None)
    received = {r["vendor_id"]: (r["status"], r.get("reason")) for r in endpoint.receipts}
    assert received == expected
    assert all(receipt["at"] for receipt in endpoint.receipts)
    assert (stats["receipts_posted"], stats["applied"], stats["gave_up"]) == (7, 7, 0)


def test_receipts_wait_for_their_delay(endpoint):
    with simulator_with(receipts_url=endpoint.url, receipt_delay=3600) as simulator:
        post(simulator, batch(1, 2))
        assert not simulator.wait_until_idle(0.2)
        assert endpoint.requests == []
        simulator.receipts_due_now()
        assert simulator.wait_until_idle(WAIT_SECONDS)

    assert len(endpoint.receipts) == 2


def test_a_flush_over_http_posts_the_waiting_receipts_now(endpoint):
    with simulator_with(receipts_url=endpoint.url, receipt_delay=3600) as simulator:
        post(simulator, batch(1, 2, 3))
        assert not simulator.wait_until_idle(0.2)
        connection = http.client.HTTPConnection(simulator.host, simulator.port, timeout=10)
        connection.request("POST", "/flush")
        answer = json.loads(connection.getresponse().read())
        connection.close()
        assert simulator.wait_until_idle(WAIT_SECONDS)

    assert answer["queued"] in (0, 3)  # the poster may have taken them already
    assert len(endpoint.receipts) == 3


def test_a_resent_delivery_id_gets_the_same_vendor_id_and_no_second_receipt(endpoint):
    with simulator_with(receipts_url=endpoint.url) as simulator:
        _status, first = post(simulator, batch(1, 2, 3))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        _status, again = post(simulator, batch(2, 3, 4, 4))  # a crash's re-send, and a new id
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    vendor_ids = {entry["delivery_id"]: entry["vendor_id"] for entry in first["accepted"]}
    assert [entry["vendor_id"] for entry in again["accepted"][:2]] == [vendor_ids[2], vendor_ids[3]]
    assert (stats["messages"], stats["repeats"]) == (4, 3)
    assert sorted(r["vendor_id"] for r in endpoint.receipts) == sorted(
        vendor_id_for(i, 0) for i in (1, 2, 3, 4)
    )


def test_a_batch_with_unknown_receipts_is_posted_again_until_they_are_known(endpoint):
    endpoint.script = [{"applied": 1, "duplicate": 0, "unknown": 2, "stale": 0}, 503]
    with simulator_with(receipts_url=endpoint.url) as simulator:
        post(simulator, batch(1, 2, 3))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    # Unknown, then the CRM busy, then taken: the same three receipts each time.
    assert len(endpoint.requests) == 3
    assert endpoint.requests[0][1] == endpoint.requests[1][1] == endpoint.requests[2][1]
    assert (stats["receipt_requests"], stats["applied"], stats["unknown"]) == (3, 4, 2)
    assert stats["gave_up"] == 0


def test_receipts_never_known_are_given_up_then_owed_again_when_the_id_is_resent(endpoint):
    never = {"applied": 0, "duplicate": 0, "unknown": 1, "stale": 0}
    endpoint.script = [never, never]
    with simulator_with(receipts_url=endpoint.url, receipt_attempts=2) as simulator:
        post(simulator, batch(1))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        assert simulator.stats_snapshot()["gave_up"] == 1
        # The CRM lost the vendor id (a crash) and sends the batch again: the receipt is owed.
        post(simulator, batch(1))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    assert len(endpoint.requests) == 3
    assert (stats["messages"], stats["repeats"], stats["applied"]) == (1, 1, 1)


def test_an_unreachable_crm_is_retried_then_given_up():
    with simulator_with(
        receipts_url="http://127.0.0.1:9/api/v1/deliveries/receipts", receipt_attempts=3
    ) as simulator:
        post(simulator, batch(1, 2))
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    assert (stats["receipt_requests"], stats["gave_up"], stats["applied"]) == (3, 2, 0)


# --- The whole loop with the CRM ----------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_webhook_campaign_reaches_the_simulator_and_every_receipt_comes_back(
    live_server, settings
):
    settings.MINICRM_WEBHOOK_SECRET = SECRET
    settings.MINICRM_DELIVERY_BATCH_SIZE = 7
    customers = CustomerFactory.create_batch(40)
    segment = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=None
    )
    campaign = campaign_create(
        created_by=None,
        name="Loop",
        segment_id=segment.pk,
        channel="webhook",
        subject="Hi {{ first_name }}",
        template="Hello {{ first_name }}: {{ unsubscribe_url }}",
    )
    receipts_url = f"{live_server.url}/api/v1/deliveries/receipts"
    # Receipts wait until the campaign is sent: on SQLite the live server shares this thread's
    # in-memory database connection, so the two must not write at the same time.
    with simulator_with(receipts_url=receipts_url, receipt_delay=3600, seed=7) as simulator:
        settings.MINICRM_WEBHOOK_URL = simulator.messages_url
        campaign_send(campaign_id=campaign.pk)  # the immediate backend launches and delivers
        campaign.refresh_from_db()
        assert (campaign.status, campaign.sent) == ("sent", 40)
        simulator.receipts_due_now()
        assert simulator.wait_until_idle(WAIT_SECONDS)
        stats = simulator.stats_snapshot()

    rows = {d.customer_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert set(rows) == {customer.pk for customer in customers}
    for row in rows.values():
        status, reason = receipt_outcome(row.pk, 7, 10)
        assert row.vendor_id == vendor_id_for(row.pk, 7)
        assert (row.status, row.error) == (status, reason)
        assert row.receipt_at is not None
    failed = sum(1 for row in rows.values() if row.status == "failed")
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert (campaign.sent, campaign.delivered, campaign.failed) == (0, 40 - failed, failed)
    assert counters_of(campaign) == counters_from_rows(campaign.pk)
    assert (stats["batches"], stats["messages"], stats["repeats"]) == (6, 40, 0)
    assert (stats["applied"], stats["unknown"], stats["gave_up"]) == (40, 0, 0)


# --- The command --------------------------------------------------------------------------------
def test_the_command_serves_until_terminated(tmp_path):
    env = {**os.environ, "MINICRM_WEBHOOK_SECRET": SECRET, "MINICRM_VAR_DIR": str(tmp_path)}
    command = [sys.executable, "manage.py", "vendor_simulator", "--port", "0", "--receipts-url="]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first_line = process.stdout.readline()  # type: ignore[union-attr]
        url = urlsplit(first_line.split(" at ", 1)[1].split(";", 1)[0])
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        body = batch(5)
        connection.request(
            "POST", url.path, body=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
        )
        answer = json.loads(connection.getresponse().read())
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)

    assert "receipts to nowhere" in first_line
    assert answer["accepted"] == [{"delivery_id": 5, "vendor_id": vendor_id_for(5, 0)}]
    assert process.returncode == 0, stderr
    assert "Vendor simulator stopped." in stdout
    assert stderr.count("Batch of 1") == 1  # one log line per batch


def test_the_command_needs_the_webhook_secret(tmp_path):
    env = {**os.environ, "MINICRM_WEBHOOK_SECRET": "", "MINICRM_VAR_DIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "manage.py", "vendor_simulator", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1
    assert "MINICRM_WEBHOOK_SECRET" in finished.stderr
