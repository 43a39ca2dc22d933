"""Delivery benchmark: a webhook campaign to 100,000 recipients through the vendor simulator.

    .venv/bin/python bench/delivery.py                       # SQLite, in a temporary directory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/delivery.py
        # PostgreSQL: a scratch database (`bench_delivery`) on that server, dropped at the end

End to end, on a fresh database, in three processes as in production (bin/dev): this one is the
worker, a child serves the CRM's web app (its receipts endpoint) on 127.0.0.1, another child runs
the vendor simulator (minicrm.campaigns.simulator) on 127.0.0.1; ports are ephemeral.

1. `--recipients` customers are written (untimed), all reachable, and a segment of everyone;
2. **send**: a webhook campaign is sent: the launch freezes the audience (one INSERT ... SELECT),
   then the delivery task runs in this process as `db_worker` runs it (batches of
   MINICRM_DELIVERY_BATCH_SIZE rendered, signed, POSTed, recorded with their counters), until
   the campaign is `sent`;
3. **receipts**: meanwhile, `--receipt-delay` seconds after each batch the simulator posts its
   receipts (signed, up to `--receipt-batch-size` a request) to the web child, which applies them
   (minicrm.campaigns.receipts); the run waits until every delivery has its receipt. With
   `--hold-receipts` they are all posted only once the campaign is sent: the receipts endpoint's
   own rate, without the worker writing at the same time;
4. checks: every recipient has exactly one delivery, with a vendor id, delivered or failed as the
   simulator drew it; the counters equal the rows; no receipt given up;
5. **bare**: the same messages, the same batch sizes, the same signing and the same keep-alive
   connection (the webhook channel's sender), POSTed to a fresh simulator of the same settings
   (posting no receipts): what the HTTP round trips cost without the CRM in between.

`--profile` prints where the worker's time goes (cProfile, top functions by own time);
`--profile-out FILE` also keeps the profile for `python -m pstats FILE`.
"""
# ruff: noqa: E402  (Django must see DATABASE_URL before it is imported)

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    # The children (spawned) inherit this process's environment, so they find the same file.
    _scratch = tempfile.mkdtemp(prefix="minicrm-bench-delivery-")
    os.environ["DATABASE_URL"] = f"sqlite:///{_scratch}/bench.sqlite3"
    os.environ["MINICRM_BENCH_SCRATCH"] = _scratch
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
# One secret for the three processes (the children read it from their settings).
os.environ.setdefault("MINICRM_WEBHOOK_SECRET", secrets.token_hex(32))

import django

django.setup()

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from minicrm.campaigns.channels import channel_for
from minicrm.campaigns.channels.base import Message
from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_create, campaign_send
from minicrm.campaigns.simulator import (
    SimulatorSettings,
    VendorSimulator,
    receipt_outcome,
    vendor_id_for,
)
from minicrm.customers.models import Customer
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

SCRATCH_DATABASE = "bench_delivery"
CUSTOMER_CHUNK = 5_000
TEMPLATE = (
    "Hi {{ first_name | default('there') }},\n\n"
    "Our spring collection has arrived in {{ city | default('your city') }}. As one of our "
    "customers with {{ order_count }} orders so far, you get early access this week.\n\n"
    "Not interested? Unsubscribe: {{ unsubscribe_url }}"
)
SUBJECT = "{{ first_name | default('Hello') }}, the spring collection is here"


# --- The children ---------------------------------------------------------------------------
def serve_web(ready: Any, stop: Any) -> None:
    """The CRM's web app on an ephemeral port (Django's threaded WSGI server, as runserver)."""
    import logging

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    logging.getLogger("django.server").setLevel(logging.WARNING)
    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(get_wsgi_application())
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.put(server.server_address[1])
    stop.wait()
    server.shutdown()


def serve_vendor(simulator_settings: SimulatorSettings, ready: Any, stop: Any) -> None:
    """The vendor simulator on an ephemeral port, quiet (it would log a line per batch)."""
    import logging

    logging.getLogger("minicrm.campaigns.simulator").setLevel(logging.WARNING)
    with VendorSimulator(simulator_settings) as simulator:
        ready.put(simulator.port)
        stop.wait()


class Child:
    """A spawned process serving on 127.0.0.1; `port` once it listens."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop = context.Queue(), context.Event()
        self.process = context.Process(target=target, args=(*args, self._ready, self._stop))
        self.process.start()
        self.port = int(self._ready.get(timeout=120))

    def stop(self) -> None:
        self._stop.set()
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.kill()


def vendor_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def vendor_flush(port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/flush", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback only)
        answer.read()


def vendor_idle_stats(port: int, timeout: float) -> dict[str, Any]:
    """The simulator's counts once no receipt waits or is in flight (its last answer counted)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = vendor_stats(port)
        if not (stats["queued"] or stats["in_flight"]) or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


# --- The database ---------------------------------------------------------------------------
def database_create() -> str | None:
    """A fresh database with the app's tables; returns the server database's name to drop at
    the end (None for SQLite: its scratch directory is removed)."""
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0)
        return None
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = SCRATCH_DATABASE
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    url = urlsplit(os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}"))
    return str(name)


def database_drop(name: str | None) -> None:
    if name is None:
        scratch = os.environ.get("MINICRM_BENCH_SCRATCH")
        connection.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    settings.DATABASES["default"]["NAME"] = name
    connection.creation.destroy_test_db(name, verbosity=0)


def customers_create(how_many: int) -> None:
    cities = ["Mumbai", "Delhi", "Pune", "Chennai", "Kolkata", ""]
    for start in range(0, how_many, CUSTOMER_CHUNK):
        Customer.objects.bulk_create(
            Customer(
                external_id=f"bench-{index:07d}",
                email=f"customer{index}@example.com",
                first_name=f"Name{index}" if index % 10 else "",
                last_name="Bench",
                city=cities[index % len(cities)],
                country="India",
                order_count=index % 7,
            )
            for index in range(start, min(start + CUSTOMER_CHUNK, how_many))
        )


# --- The runs -------------------------------------------------------------------------------
def wait_for_receipts(campaign_id: int, expected: int, timeout: float) -> float:
    """Poll until every sent delivery has its receipt; returns when (epoch seconds)."""
    deadline = time.monotonic() + timeout
    final = [Delivery.Status.DELIVERED, Delivery.Status.FAILED]
    while time.monotonic() < deadline:
        done = Delivery.objects.filter(campaign_id=campaign_id, status__in=final).count()
        if done >= expected:
            return time.time()
        time.sleep(0.05)
    raise SystemExit(f"Only {done:,} of {expected:,} receipts arrived in {timeout:.0f} s.")


def check(campaign: Campaign, recipients: int, seed: int) -> list[str]:
    """What is wrong with the outcome (empty: nothing)."""
    problems = []
    if counters_of(campaign) != counters_from_rows(campaign.pk):
        problems.append(
            f"counters {counters_of(campaign)} != rows {counters_from_rows(campaign.pk)}"
        )
    per_customer = (
        Delivery.objects.filter(campaign=campaign)
        .values("customer_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    if per_customer:
        problems.append(f"{per_customer} customers have more than one delivery")
    rows = Delivery.objects.filter(campaign=campaign).values_list("pk", "vendor_id", "status")
    wrong = 0
    count = 0
    for pk, vendor_id, status in rows.iterator(chunk_size=10_000):
        count += 1
        drawn, _reason = receipt_outcome(pk, seed, 10.0)
        wrong += vendor_id != vendor_id_for(pk, seed) or status != drawn
    if count != recipients:
        problems.append(f"{count:,} deliveries for {recipients:,} recipients")
    if wrong:
        problems.append(f"{wrong:,} deliveries without their vendor id or drawn status")
    return problems


def send_bare(messages: list[Message], simulator_settings: SimulatorSettings) -> float:
    """The same batches through the webhook channel's sender, without the CRM; seconds."""
    vendor = Child(serve_vendor, simulator_settings)
    try:
        settings.MINICRM_WEBHOOK_URL = f"http://127.0.0.1:{vendor.port}/messages"
        size = int(settings.MINICRM_DELIVERY_BATCH_SIZE)
        channel = channel_for("webhook")
        started = time.perf_counter()
        for start in range(0, len(messages), size):
            with channel.opened() as sender:  # one per batch, as the worker opens it
                outcomes = sender.send(messages[start : start + size])
            assert all(outcome.status == "sent" for outcome in outcomes), outcomes[:3]
        seconds = time.perf_counter() - started
        stats = vendor_stats(vendor.port)
        assert stats["messages"] == len(messages), stats
        return seconds
    finally:
        vendor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, help="MINICRM_DELIVERY_BATCH_SIZE (500)")
    parser.add_argument("--receipt-delay", type=float, default=1.0)
    parser.add_argument("--receipt-batch-size", type=int, default=5_000)
    parser.add_argument(
        "--hold-receipts", action="store_true", help="post the receipts once the send is over"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the receipts")
    parser.add_argument("--profile", action="store_true", help="profile the worker")
    parser.add_argument("--profile-out", help="also write the worker's profile here (pstats)")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()
    if args.batch_size:
        settings.MINICRM_DELIVERY_BATCH_SIZE = args.batch_size
    created = database_create()
    try:
        results = run(args)
    finally:
        database_drop(created)
    print()
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if results["problems"]:
        raise SystemExit("Problems: " + "; ".join(results["problems"]))


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipients = args.recipients
    print(
        f"{connection.vendor}; {recipients:,} recipients; batches of "
        f"{settings.MINICRM_DELIVERY_BATCH_SIZE}; webhook rate limit "
        f"{settings.MINICRM_CHANNEL_RATES.get('webhook') or 'none'}/s; load average "
        + " / ".join(f"{value:.2f}" for value in os.getloadavg()),
        flush=True,
    )
    started = time.perf_counter()
    customers_create(recipients)
    segment = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=None
    )
    print(f"customers written in {time.perf_counter() - started:.1f} s (untimed)", flush=True)

    secret = settings.MINICRM_WEBHOOK_SECRET
    web = Child(serve_web)
    simulator_settings = SimulatorSettings(
        secret=secret,
        receipts_url=f"http://127.0.0.1:{web.port}/api/v1/deliveries/receipts",
        receipt_delay=3600 if args.hold_receipts else args.receipt_delay,
        receipt_batch_size=args.receipt_batch_size,
        seed=args.seed,
    )
    vendor = Child(serve_vendor, simulator_settings)
    try:
        settings.MINICRM_WEBHOOK_URL = f"http://127.0.0.1:{vendor.port}/messages"
        campaign = campaign_create(
            created_by=None,
            name="Spring",
            segment_id=segment.pk,
            channel="webhook",
            subject=SUBJECT,
            template=TEMPLATE,
        )
        profiler = cProfile.Profile() if args.profile else None
        began = time.time()
        if profiler:
            profiler.enable()
        campaign_send(campaign_id=campaign.pk)  # the immediate backend: launch, then deliver
        if profiler:
            profiler.disable()
        sent_at = time.time()
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SENT, (campaign.status, campaign.error)
        expected = campaign.sent + campaign.delivered + campaign.failed
        print(f"sent {expected:,} in {sent_at - began:.1f} s; waiting for receipts", flush=True)
        if args.hold_receipts:
            vendor_flush(vendor.port)
        received_at = wait_for_receipts(campaign.pk, expected, args.timeout)
        stats = vendor_idle_stats(vendor.port, timeout=60)
    finally:
        vendor.stop()
        web.stop()

    campaign.refresh_from_db()
    problems = check(campaign, recipients, args.seed)
    if stats["gave_up"] or stats["repeats"]:
        problems.append(f"simulator: {stats['gave_up']} given up, {stats['repeats']} repeats")
    launch_s = (campaign.snapshot_at - campaign.launched_at).total_seconds()
    send_s = sent_at - began
    receipts_s = stats["last_receipt_at"] - stats["first_receipt_at"]
    results: dict[str, Any] = {
        "database": connection.vendor,
        "recipients": recipients,
        "batch_size": settings.MINICRM_DELIVERY_BATCH_SIZE,
        "receipts_held": args.hold_receipts,
        "launch_s": launch_s,
        "send_s": send_s,
        "send_rate": recipients / send_s,
        "receipts": stats["applied"],
        "receipts_s": receipts_s,
        "receipts_rate": stats["applied"] / receipts_s,
        "receipt_requests": stats["receipt_requests"],
        "receipt_busy_s": stats["receipt_seconds"],
        "receipts_busy_rate": stats["applied"] / stats["receipt_seconds"],
        "unknown": stats["unknown"],
        "end_to_end_s": received_at - began,
        "delivered": campaign.delivered,
        "failed": campaign.failed,
        "problems": problems,
        "load_average_end": os.getloadavg(),
    }
    print(
        f"launch {launch_s:.1f} s; receipts {stats['applied']:,} in {receipts_s:.1f} s "
        f"({stats['receipt_requests']} requests, {stats['unknown']} unknown); every receipt in "
        f"{received_at - began:.1f} s after the send; delivered {campaign.delivered:,}, failed "
        f"{campaign.failed:,}; " + ("checks passed" if not problems else "; ".join(problems)),
        flush=True,
    )
    if profiler:
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        print(report.getvalue())
        if args.profile_out:
            profiler.dump_stats(args.profile_out)

    messages = [
        Message(pk, "webhook", to, subject, body, "")
        for pk, to, subject, body in Delivery.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("pk", "to", "subject", "body")
        .iterator(chunk_size=10_000)
    ]
    bare_s = send_bare(messages, SimulatorSettings(secret=secret, seed=args.seed))
    results |= {"bare_s": bare_s, "bare_rate": len(messages) / bare_s}
    print(f"bare: {len(messages):,} in {bare_s:.1f} s", flush=True)
    return results


def print_table(results: dict[str, Any]) -> None:
    n = results["recipients"]
    rows = [
        ("bare HTTP batches to the simulator (no CRM)", n, results["bare_s"]),
        ("send: launch + worker, to campaign `sent`", n, results["send_s"]),
        ("receipts: first receipt to last applied", results["receipts"], results["receipts_s"]),
        (
            "receipts: time the receipts endpoint spent answering",
            results["receipts"],
            results["receipt_busy_s"],
        ),
        ("end to end: send to every receipt applied", n, results["end_to_end_s"]),
    ]
    held = (
        "receipts held until the send is over" if results["receipts_held"] else "receipts meanwhile"
    )
    print(f"{results['database']}, {n:,} recipients, batches of {results['batch_size']}, {held}")
    print()
    print("| stage | messages | seconds | messages/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, messages, seconds in rows:
        print(f"| {name} | {messages:,} | {seconds:.1f} | {messages / seconds:,.0f} |")


if __name__ == "__main__":
    main()
