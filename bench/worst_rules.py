"""The worst rule tree the budget allows (core.limits, "Rule trees"), timed on one database.

    DATABASE_URL=sqlite:////tmp/bench_worst.sqlite3 .venv/bin/python bench/worst_rules.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_worst \\
        .venv/bin/python bench/worst_rules.py
    DATABASE_URL=mysql://root@127.0.0.1:3306/bench_worst .venv/bin/python bench/worst_rules.py

The database is migrated and filled with `--customers` seeded customers (with tags) unless it
already holds that many. Then, for the tree of tests/segments/test_worst_rules.py (100
conditions, 5,000 list values, 5 levels), one run each of: preview count (= the size task's
count), the preview's 10-row sample, the funnel, the first members page (50 rows and the
count), and the whole CSV export rows. Every step runs under a statement timeout of
`--timeout` seconds, so a step that runs away is reported as "timeout", not waited for.

`--old` compiles lists as before issue 10 (an OR chain of `iexact`, one correlated EXISTS per
tag of `has_all`, the funnel counting each prefix) to compare. Do not run `--old` on a shared
PostgreSQL: its planner ignored cancels on such trees (issue 10).
"""
# ruff: noqa: E402  (Django must see DATABASE_URL before it is imported)

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/bench_worst.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact

from minicrm.core.statement_timeout import StatementTimeoutError, statement_timeout
from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments import compiler, selectors
from minicrm.segments.compiler import compile_rules, customers_matching
from minicrm.segments.models import Segment
from minicrm.segments.rules import Condition, RuleGroup, parse_rules
from tests.segments.test_worst_rules import worst_rules

CITIES = ["Pune", "pune ", "Mumbai", "New Delhi", "Chennai", "", "a_b", "Kolkata"]
COUNTRIES = ["India", "USA", "", "india", "UK"]
TAGS = ["vip", "new", "b2b", "churn-risk"]


def fill(customers: int, seed: int) -> None:
    if Customer.objects.count() == customers:
        return
    CustomerTag.objects.all().delete()
    Customer.objects.all().delete()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    batch = []
    for index in range(customers):
        orders = rng.choice([0, 1, 2, 3, 5])
        last = now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
        batch.append(
            Customer(
                external_id=f"w{index}",
                email=f"w{index}@example.com" if index % 3 else "",
                city=rng.choice(CITIES),
                country=rng.choice(COUNTRIES),
                signed_up_at=now - timedelta(days=rng.randint(0, 400)),
                order_count=orders,
                total_spend=Decimal(rng.randint(100, 200_000)) / 100 if orders else Decimal(0),
                first_order_at=last - timedelta(days=30) if orders else None,
                last_order_at=last if orders else None,
            )
        )
    Customer.objects.bulk_create(batch, batch_size=2000)
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    tags = [
        CustomerTag(customer_id=pk, name=name)
        for pk in ids
        for name in rng.sample(TAGS, rng.randint(0, 3))
    ]
    CustomerTag.objects.bulk_create(tags, batch_size=5000)


# --- The compile before issue 10, for --old -----------------------------------------------


def old_text(condition: Condition, today: Any) -> Q:
    if condition.operator not in ("in", "not_in"):
        return NEW_COMPILERS["text"](condition, today)
    column = compiler.TEXT_COLUMNS[condition.field]
    any_of = Q()
    for item in dict.fromkeys(condition.value):
        any_of |= Q(**{f"{column}__iexact": item})
    if condition.operator == "in":
        return any_of
    empty = Q(Exact(Length(column), 0))
    return ~empty & ~any_of


def old_tags(condition: Condition, today: Any) -> Q:
    names = list(dict.fromkeys(name.lower() for name in condition.value))

    def having(*wanted: str) -> Exists:
        return Exists(CustomerTag.objects.filter(customer=OuterRef("pk"), name__in=wanted))

    if condition.operator == "has_any":
        return Q(having(*names))
    if condition.operator == "has_none":
        return ~Q(having(*names))
    result = Q()
    for name in names:
        result &= Q(having(name))
    return result


def old_funnel(rules: RuleGroup) -> list[int]:
    prefixes = [
        RuleGroup(match=rules.match, conditions=rules.conditions[: index + 1])
        for index in range(len(rules.conditions))
    ]
    filters = [compile_rules(prefix) for prefix in prefixes]
    totals = Customer.objects.aggregate(
        **{f"step_{i}": Count("pk", filter=q) for i, q in enumerate(filters)}
    )
    return [totals[f"step_{i}"] for i in range(len(filters))]


NEW_COMPILERS = dict(compiler.KIND_COMPILERS)


def use_old_compile() -> None:
    compiler.KIND_COMPILERS["text"] = old_text
    compiler.KIND_COMPILERS["tags"] = old_tags


# --- Timing ------------------------------------------------------------------------------


def timed(name: str, step: Callable[[], Any], seconds: float) -> None:
    started = time.perf_counter()
    try:
        with statement_timeout(seconds):
            result = step()
    except StatementTimeoutError:
        print(f"{name:<14} timeout after {time.perf_counter() - started:8.2f} s", flush=True)
        return
    except Exception as error:  # noqa: BLE001 (a database that refuses the query is a result too)
        message = str(error).splitlines()[0][:80]
        print(f"{name:<14} error {time.perf_counter() - started:8.2f} s: {message}", flush=True)
        return
    elapsed = time.perf_counter() - started
    print(f"{name:<14} {elapsed:8.3f} s  ({result})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--old", action="store_true", help="the OR-chain compile of before")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    fill(args.customers, args.seed)
    rules = parse_rules(worst_rules())
    if args.old:
        use_old_compile()
    funnel = old_funnel if args.old else (lambda group: selectors.segment_funnel(rules=group))
    print(
        f"{connection.vendor}, {Customer.objects.count():,} customers, "
        f"{'old OR-chain' if args.old else 'one IN per list'} compile",
        flush=True,
    )
    members = customers_matching(rules).order_by("id")

    def members_page() -> str:
        return f"{len(list(members[:50]))} rows of {members.count()}"

    def export() -> str:
        # The export of a saved segment with these rules (the bench saves nothing).
        segment: Any = Segment(name="Worst", rules=rules.to_dict())
        return f"{sum(1 for _ in selectors.segment_export_rows(segment=segment))} rows"

    timed("count (size)", lambda: customers_matching(rules).count(), args.timeout)
    timed("sample", lambda: len(selectors.segment_sample(rules=rules)), args.timeout)
    timed("funnel", lambda: len(funnel(rules)), args.timeout)
    timed("members page", members_page, args.timeout)
    timed("export", export, args.timeout)


if __name__ == "__main__":
    main()
