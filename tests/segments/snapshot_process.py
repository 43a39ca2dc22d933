"""One process using the machine's snapshot, driven line by line (run by test_snapshot_shared.py).

`python -m tests.segments.snapshot_process` on the SQLite FILE database of $DATABASE_URL, with
the snapshot's generations in $MINICRM_SNAPSHOT_DIR. It reads one command a line from stdin and
answers each with one JSON line:
- "migrate": a fresh database with SEED customers (spend 0..SEED-1);
- "open": waits for the machine's copy (building it if this process gets the lock);
- "preview": the rule's count through `segment_preview`, and through SQL;
- "write": 3 new customers that match and one that stops matching;
- "compact": writes the next generation from this process's delta.
"""

import json
import os
import sys
from decimal import Decimal
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from minicrm.customers.models import Customer  # noqa: E402
from minicrm.segments import snapshot as snapshot_module  # noqa: E402
from minicrm.segments.compiler import customers_matching  # noqa: E402
from minicrm.segments.rules import parse_rules  # noqa: E402
from minicrm.segments.selectors import segment_preview  # noqa: E402
from tests.factories import CustomerFactory  # noqa: E402

SEED = 200
RULES = parse_rules(
    {"match": "all", "conditions": [{"field": "total_spend", "operator": "gte", "value": 150}]}
)
built: list[bool] = []


def _recording_build(**kwargs: Any) -> bool:
    done = BUILD(**kwargs)
    built.append(done)
    return done


BUILD = snapshot_module.generation_build
snapshot_module.generation_build = _recording_build  # type: ignore[assignment]
# Generations change only when the test says so ("compact"), not when a refresh finds it due.
snapshot_module.COMPACT_AFTER_SECONDS = 3600.0


def answer(command: str) -> dict[str, Any]:
    if command == "migrate":
        call_command("migrate", verbosity=0)
        for n in range(SEED):
            CustomerFactory(external_id=f"s{n}", total_spend=Decimal(n), order_count=1)
        return {"customers": Customer.objects.count()}
    if command == "open":
        snapshot = snapshot_module.snapshot_ready_or_start_build(wait_seconds=60)
        assert snapshot is not None
        return {"generation": snapshot.generation, "built": any(built)}
    if command == "preview":
        settings.MINICRM_PREVIEW_SNAPSHOT = True
        preview = segment_preview(rules=RULES)
        shared = snapshot_module._shared
        return {
            "count": preview["count"],
            "total": preview["total_customers"],
            "sql": customers_matching(RULES, today=timezone.localdate()).count(),
            "generation": shared.generation if shared is not None else None,
            "delta_rows": shared.delta_rows if shared is not None else None,
        }
    if command == "write":
        for n in range(3):
            CustomerFactory(total_spend=Decimal(500 + n), order_count=1)
        Customer.objects.filter(external_id=f"s{SEED - 1}").update(
            total_spend=Decimal(0), updated_at=timezone.now()
        )
        return {"customers": Customer.objects.count()}
    if command == "compact":
        shared = snapshot_module._shared
        assert shared is not None
        return {"compacted": shared.compact(), "state": snapshot_module.snapshot_state()}
    raise ValueError(f"Unknown command {command!r}")


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(answer(line.strip())), flush=True)


if __name__ == "__main__":
    main()
