"""`manage.py seed_demo`: load realistic demo customers and orders (see minicrm.customers.demo)."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from minicrm.customers.demo import demo_seed
from minicrm.customers.models import Customer


class Command(BaseCommand):
    help = "Add realistic demo customers and orders (reproducible with --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=2000, help="default 2,000")
        parser.add_argument("--orders", type=int, default=16000, help="default 16,000")
        parser.add_argument("--seed", type=int, default=42, help="same seed, same data")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when customers already exist"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        customers, orders = options["customers"], options["orders"]
        if customers < 0:
            raise CommandError("--customers must be 0 or more.")
        if orders < 0:
            raise CommandError("--orders must be 0 or more.")
        if orders and not customers:
            raise CommandError("--orders needs at least one customer (--customers).")
        if options["if_empty"] and Customer.objects.exists():
            self.stdout.write("Customers already exist; no demo data added (--if-empty).")
            return
        started = time.monotonic()
        with tqdm(total=customers, unit="customer", disable=customers < 50_000 or None) as progress:
            counts = demo_seed(
                customers=customers,
                orders=orders,
                seed=options["seed"],
                on_progress=progress.update,
            )
        seconds = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {counts.customers:,} customers, {counts.orders:,} orders and "
                f"{counts.tags:,} tags in {seconds:.1f} s."
            )
        )
