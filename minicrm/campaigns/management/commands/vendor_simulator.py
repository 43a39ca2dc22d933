"""Run the messaging vendor simulator on 127.0.0.1 (minicrm.campaigns.simulator) until stopped."""

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from minicrm.campaigns.simulator import MAX_RECEIPT_BATCH, SimulatorSettings, VendorSimulator


def default_receipts_url() -> str:
    return settings.MINICRM_PUBLIC_URL.rstrip("/") + reverse("api:deliveries_receipts")


class Command(BaseCommand):
    help = (
        "Simulate the webhook channel's messaging vendor: accept signed batches at /messages, "
        "then post signed receipts (about 90 % delivered) to the CRM."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
        parser.add_argument(
            "--receipts-url",
            default=None,
            help="Where receipts go (default: MINICRM_PUBLIC_URL + /api/v1/deliveries/receipts; "
            "an empty value posts none)",
        )
        parser.add_argument("--receipt-delay", type=float, default=1.0, help="seconds")
        parser.add_argument("--failure-percent", type=float, default=10.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--receipt-batch-size", type=int, default=1_000, help=f"1 to {MAX_RECEIPT_BATCH:,}"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.MINICRM_WEBHOOK_SECRET:
            raise CommandError("Set MINICRM_WEBHOOK_SECRET: batches and receipts are signed.")
        if not 0 <= options["failure_percent"] <= 100:
            raise CommandError("--failure-percent is between 0 and 100.")
        if options["receipt_delay"] < 0:
            raise CommandError("--receipt-delay cannot be negative.")
        receipts_url = options["receipts_url"]
        try:
            simulator = VendorSimulator(
                SimulatorSettings(
                    secret=settings.MINICRM_WEBHOOK_SECRET,
                    receipts_url=default_receipts_url() if receipts_url is None else receipts_url,
                    receipt_delay=options["receipt_delay"],
                    failure_percent=options["failure_percent"],
                    seed=options["seed"],
                    receipt_batch_size=options["receipt_batch_size"],
                ),
                host=options["host"],
                port=options["port"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        except OSError as error:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(
                f"Cannot listen on {where} ({error}); choose another --port."
            ) from error
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        with simulator:
            receipts = simulator.settings.receipts_url or "nowhere (no receipts)"
            self.stdout.write(
                f"Vendor simulator at {simulator.messages_url}; receipts to {receipts}",
            )
            self.stdout.flush()
            stop.wait()
        self.stdout.write("Vendor simulator stopped.")
