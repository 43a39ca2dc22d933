"""The read-replica scenarios, run in a process of their own (tests/core/test_replica.py).

Django's test runner would point the replica at the test database (MIRROR); here the primary
and the replica are two real databases holding different customers, so each answer shows which
one it came from. Run with DATABASE_URL (the primary, migrated), optionally DATABASE_REPLICA_URL
(a copy of its schema), and MINICRM_REPLICA_PIN_SECONDS; prints what each request saw as JSON.
"""

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()  # responses carry their template context

from django.core.cache import cache  # noqa: E402
from django.db import connections  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402

from minicrm.accounts.models import Role  # noqa: E402
from minicrm.core import replica  # noqa: E402
from minicrm.core.replica import PIN_COOKIE, ReplicaPinMiddleware, replica_reads  # noqa: E402
from minicrm.core.statement_timeout import statement_timeout  # noqa: E402
from minicrm.customers.models import Customer  # noqa: E402
from minicrm.segments.rules import parse_rules  # noqa: E402
from minicrm.segments.services import segment_create  # noqa: E402
from tests.factories import CustomerFactory, UserFactory  # noqa: E402

PRIMARY_CUSTOMERS = 3
REPLICA_CUSTOMERS = 8
EVERYONE = {"match": "all", "conditions": []}


def seed() -> int:
    """Different customers on each database; the user and the segment on the primary only
    (sign-in and the segment itself are read from the primary)."""
    aliases = ["default", *(["replica"] if "replica" in connections.settings else [])]
    for alias in aliases:
        count = PRIMARY_CUSTOMERS if alias == "default" else REPLICA_CUSTOMERS
        people = CustomerFactory.build_batch(count)
        for number, person in enumerate(people):
            person.external_id = f"{alias}-{number}"
            person.email = f"{alias}-{number}@example.com"
        Customer.objects.using(alias).bulk_create(people)
    user = UserFactory(role=Role.MARKETER)
    segment = segment_create(name="Everyone", rules=parse_rules(EVERYONE), created_by=user)
    return segment.pk


def members_count(client: Client, segment_id: int) -> int:
    response = client.get(f"/api/v1/segments/{segment_id}/customers")
    assert response.status_code == 200, response.content
    return int(response.json()["count"])


def reads(client: Client, segment_id: int) -> dict[str, Any]:
    """How many customers each read-heavy path saw."""
    cache.clear()  # the dashboard and the list's filter choices are cached
    members_page = client.get(f"/segments/{segment_id}/?tab=members")
    export = client.get(f"/api/v1/segments/{segment_id}/export")
    exported = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    preview = client.post(
        "/api/v1/segments/preview", {"rules": EVERYONE}, content_type="application/json"
    )
    dashboard = client.get("/")
    customers_page = client.get("/customers/")
    return {
        "members": members_count(client, segment_id),
        "members_page": members_page.context["page"].paginator.count,
        "export": len(exported) - 1,  # the header
        "preview": preview.json()["count"],
        "dashboard": dashboard.context["data"].customers,
        "customers_page": customers_page.context["total"],
    }


def same_request() -> dict[str, Any]:
    """A request that writes and then reads, through the middleware: the read is the primary's."""
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        with replica_reads():
            seen["before"] = Customer.objects.count()
        Customer.objects.create(external_id="written-in-request", email="w@example.com")
        with replica_reads():
            seen["after"] = Customer.objects.count()
        return HttpResponse("ok")

    response = ReplicaPinMiddleware(view)(RequestFactory().post("/"))
    seen["pin_cookie"] = PIN_COOKIE in response.cookies
    return seen


def budgets() -> list[str]:
    """The replica's statement timeout inside both orders of the two blocks."""
    shown = []
    for outer_first in (True, False):
        seconds = 5 if outer_first else 4
        first, second = (
            (replica_reads(), statement_timeout(seconds))
            if outer_first
            else (statement_timeout(seconds), replica_reads())
        )
        with first, second, connections["replica"].cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            shown.append(cursor.fetchone()[0])
    return shown


def main() -> None:
    segment_id = seed()
    client = Client()
    client.force_login(UserFactory(role=Role.MARKETER))
    found: dict[str, Any] = {"first": reads(client, segment_id)}
    if "replica" not in connections.settings:
        print(json.dumps(found))
        return
    found["same_request"] = same_request()
    found["replica_budgets"] = budgets()
    # A write in one request (ingestion's raw bulk SQL) pins the client's next ones.
    written = client.post(
        "/api/v1/customers/bulk",
        {"rows": [{"external_id": "written-by-api", "email": "api@example.com"}]},
        content_type="application/json",
    )
    assert written.status_code == 200, written.content
    found["pin_cookie_after_write"] = PIN_COOKIE in written.cookies
    found["pinned"] = reads(client, segment_id)
    # Later than MINICRM_REPLICA_PIN_SECONDS: back to the replica (the cookie is still sent).
    later = SimpleNamespace(time=lambda: time.time() + replica.pin_seconds() + 1)
    with mock.patch.object(replica, "time", later):
        found["expired"] = reads(client, segment_id)
    # Another client, which wrote nothing, was never pinned.
    other = Client()
    other.force_login(UserFactory(role=Role.VIEWER))
    found["other_client"] = members_count(other, segment_id)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
