"""The crash test: a real worker (`manage.py db_worker`) is SIGKILLed in the middle of a
10,000-recipient webhook campaign, a new worker is started, and the campaign completes.

The vendor is a recording HTTP server in this process. It holds its answer to one batch until
the worker has been killed, so that batch is truly in flight: it reached the vendor, and the
worker never learnt the answer. Afterwards every recipient's delivery id has reached the vendor,
only the ids of the batch in flight arrived twice, no customer has two delivery ids, and the
counters equal the rows. Workers run on a database of their own on this pass's server
(tests/core/worker_process.py), with a 3-second lease and a 1-second sweep.
"""

import json
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from minicrm.campaigns.signing import SIGNATURE_HEADER, signature_valid
from tests.core.worker_process import (
    manage,
    python,
    start_worker,
    wait_for,
    worker_database,
    worker_env,
    worker_processes,
)

RECIPIENTS = 10_000
BATCH = 500
HELD_BATCH = 5  # the vendor holds its answer to this batch until the worker is dead
SECRET = "crash-test-secret"

SETUP = f"""
from minicrm.campaigns.services import campaign_create, campaign_send
from minicrm.customers.services import customers_bulk_upsert
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

customers_bulk_upsert(rows=[
    {{"external_id": f"C-{{n}}", "email": f"c{{n}}@example.com", "first_name": f"N{{n}}"}}
    for n in range({RECIPIENTS})
])
segment = segment_create(
    name="All", rules=parse_rules({{"match": "all", "conditions": []}}), created_by=None
)
campaign = campaign_create(
    created_by=None, name="Crash", segment_id=segment.pk, channel="webhook",
    subject="Hi {{{{ first_name }}}}", template="Hello {{{{ first_name }}}}",
)
campaign_send(campaign_id=campaign.pk)
print(campaign.pk)
"""


class RecordingVendor:
    """Accepts every batch and records the ids in the order they arrived."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.to_of: dict[int, str] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.held = threading.Event()
        self.release = threading.Event()

    def answer(self, body: bytes, signature: str | None) -> tuple[int, bytes]:
        if not signature_valid(body, signature, SECRET):
            with self.lock:
                self.bad_signatures += 1
            return 401, b"{}"
        messages = json.loads(body)["messages"]
        ids = [message["delivery_id"] for message in messages]
        with self.lock:
            self.batches.append(ids)
            self.to_of.update({message["delivery_id"]: message["to"] for message in messages})
            hold = len(self.batches) == HELD_BATCH
        if hold:
            self.held.set()
            self.release.wait(timeout=120)
        accepted = [{"delivery_id": id_, "vendor_id": f"v-{id_}"} for id_ in ids]
        return 200, json.dumps({"accepted": accepted, "rejected": []}).encode()

    def arrived(self) -> int:
        with self.lock:
            return len(self.batches)


@contextmanager
def vendor_serving(vendor: RecordingVendor) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
                self.close_connection = True  # the worker that asked was killed

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="vendor", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/batches"
    finally:
        vendor.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow
def test_a_worker_killed_mid_campaign_is_replaced_and_every_recipient_gets_one_message(
    tmp_path: Path,
) -> None:
    vendor = RecordingVendor()
    with worker_database(tmp_path) as database, vendor_serving(vendor) as url:
        env = worker_env(
            tmp_path,
            database,
            MINICRM_WEBHOOK_URL=url,
            MINICRM_WEBHOOK_SECRET=SECRET,
            MINICRM_WEBHOOK_TIMEOUT_SECONDS="60",
            MINICRM_DELIVERY_BATCH_SIZE=str(BATCH),
            MINICRM_RATE_WEBHOOK="0",
        )
        log = tmp_path / "workers.log"
        manage(env, "migrate", "--noinput")
        campaign_id = int(python(env, SETUP).strip())

        def campaign() -> tuple[Any, ...]:
            [row] = database.rows(
                "SELECT status, audience, pending, sent, failed, skipped, held_out, delivered"
                " FROM campaigns_campaign WHERE id = %s",
                campaign_id,
            )
            return row

        with worker_processes() as workers:
            first = start_worker(env, "first", log)
            workers.append(first)
            wait_for("the held batch", vendor.held.is_set, 120, log)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            arrived_before_kill = vendor.arrived()
            vendor.release.set()

            second = start_worker(env, "second", log)
            workers.append(second)
            wait_for("the campaign to finish", lambda: campaign()[0] == "sent", 120, log)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0, log.read_text()[-4000:]

        rows = database.rows(
            "SELECT id, customer_id, status, vendor_id FROM campaigns_delivery"
            " WHERE campaign_id = %s",
            campaign_id,
        )
        by_status = Counter(status for _id, _customer, status, _vendor in rows)
        customers = Counter(customer for _id, customer, _status, _vendor in rows)
        counters = campaign()

    assert arrived_before_kill == HELD_BATCH
    assert 1 < HELD_BATCH < RECIPIENTS // BATCH  # some but not all batches had arrived
    assert vendor.bad_signatures == 0
    ids = {delivery_id for delivery_id, *_ in rows}
    assert len(ids) == RECIPIENTS
    received = Counter(delivery_id for batch in vendor.batches for delivery_id in batch)
    # Every recipient's delivery id reached the vendor...
    assert set(received) == ids
    # ...and only the batch in flight arrived twice, whole, with the same ids.
    in_flight = vendor.batches[HELD_BATCH - 1]
    assert len(in_flight) == BATCH
    assert {delivery_id for delivery_id, times in received.items() if times > 1} == set(in_flight)
    assert max(received.values()) == 2
    assert in_flight in vendor.batches[HELD_BATCH:]
    # No customer has two delivery ids, here or at the vendor (one address, one id).
    assert max(customers.values()) == 1
    ids_of_address: dict[str, set[int]] = {}
    for delivery_id, to in vendor.to_of.items():
        ids_of_address.setdefault(to, set()).add(delivery_id)
    assert len(ids_of_address) == RECIPIENTS
    assert max(len(found) for found in ids_of_address.values()) == 1
    # Every delivery is sent with the vendor's id, and the counters equal the rows.
    assert by_status == {"sent": RECIPIENTS}
    assert all(vendor_id == f"v-{delivery_id}" for delivery_id, _c, _s, vendor_id in rows)
    assert counters == (
        "sent",
        RECIPIENTS,
        0,
        RECIPIENTS,
        0,
        0,
        0,
        0,
    )
