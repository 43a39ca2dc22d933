"""Concurrent bulk requests against a SQLite FILE database (run by test_sqlite_write_load.py).

`python -m tests.customers.sqlite_write_load CLIENTS ROWS` migrates a fresh database in
$MINICRM_VAR_DIR, then posts new orders to /api/v1/orders/bulk from many threads at the same
moment, through the whole middleware stack, in three rounds:
- "queue": CLIENTS batches of ROWS orders with the configured busy timeout: writers wait;
- "busy": 4 batches while another connection holds the write lock, with a 0.2 s busy timeout;
- "again": the same 4 batches once the lock is free.
Prints one JSON document: the answers and stored orders of each round, and whether every
customer's stats equal a recount from the orders.
"""

import json
import os
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from minicrm.accounts.models import Role, User  # noqa: E402
from minicrm.accounts.services import api_token_create  # noqa: E402
from minicrm.customers.models import Customer, Order  # noqa: E402
from minicrm.customers.services import customer_stats_rebuild, customers_bulk_upsert  # noqa: E402

CUSTOMERS = 100


def _orders(client: int, rows: int) -> list[dict[str, Any]]:
    # Each client's keys are its own; its rows name the shared customers in a shifted order.
    return [
        {
            "external_id": f"O-{client}-{n}",
            "customer_external_id": f"C-{(n * 7 + client) % CUSTOMERS}",
            "amount": f"{1 + (n + client) % 97}.{client % 100:02d}",
            "ordered_at": f"2025-{1 + n % 12:02d}-{1 + client % 28:02d}T10:00:00Z",
        }
        for n in range(rows)
    ]


def _round(
    token: str, batches: list[list[dict[str, Any]]], *, lock_held: bool = False
) -> list[dict[str, Any]]:
    """Post the batches at the same moment, one thread each; with `lock_held`, another
    connection holds the write lock until every answer is in."""
    start = threading.Barrier(len(batches) + (1 if lock_held else 0))
    answered = threading.Event()

    def hold() -> None:
        holder = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        start.wait(timeout=30)
        answered.wait(timeout=60)
        holder.execute("ROLLBACK")
        holder.close()

    def post(batch: list[dict[str, Any]]) -> dict[str, Any]:
        http = Client(headers={"Authorization": f"Bearer {token}"}, raise_request_exception=False)
        body = json.dumps({"rows": batch})
        try:
            start.wait(timeout=30)
            response = http.post("/api/v1/orders/bulk", data=body, content_type="application/json")
        finally:
            connection.close()
        keys = [row["external_id"] for row in batch]
        return {
            "status": response.status_code,
            "retry_after": response.get("Retry-After"),
            "body": response.json() if "json" in response["Content-Type"] else None,
            "stored": Order.objects.filter(external_id__in=keys).count(),
        }

    holder = threading.Thread(target=hold) if lock_held else None
    if holder:
        holder.start()
    with ThreadPoolExecutor(len(batches)) as pool:
        answers = list(pool.map(post, batches))
    answered.set()
    if holder:
        holder.join()
    connection.close()
    return answers


def main(clients: int, rows: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0)
    customers_bulk_upsert(rows=[{"external_id": f"C-{n}"} for n in range(CUSTOMERS)])
    user = User.objects.create_user("load@example.com", "x" * 12, role=Role.MARKETER)
    _token, token = api_token_create(user=user, name="load")
    connection.close()
    options = settings.DATABASES["default"]["OPTIONS"]
    busy_timeout = options["timeout"]

    queued = _round(token, [_orders(client, rows) for client in range(clients)])
    late = [_orders(client, 50) for client in range(clients, clients + 4)]
    # New connections read the timeout from the settings: a short one for this round only.
    options["timeout"] = 0.2
    busy = _round(token, late, lock_held=True)
    options["timeout"] = busy_timeout
    again = _round(token, late)
    return {
        "busy_timeout": busy_timeout,
        "queue": queued,
        "busy": busy,
        "again": again,
        "orders": Order.objects.count(),
        "order_count_total": sum(Customer.objects.values_list("order_count", flat=True)),
        "stats_wrong": customer_stats_rebuild(),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
