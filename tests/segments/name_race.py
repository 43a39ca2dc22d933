"""Two segments whose names differ only in case, created at the same moment from two threads
(run in process on PostgreSQL/MariaDB, and on a SQLite file by `name_race_load`)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from minicrm.core.errors import ConflictError
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

NAMES = ("VIP", "vip")


def name_race() -> list[str]:
    """ "created" or "conflict on <field>" for each of two concurrent creates, sorted.

    No read comes before the insert, so without the database's constraint both would be stored.
    """
    start = threading.Barrier(len(NAMES))
    rules = parse_rules({"match": "all", "conditions": []})

    def create(name: str) -> str:
        try:
            start.wait(timeout=30)
            segment_create(name=name, rules=rules, created_by=None)
            return "created"
        except ConflictError as error:
            return f"conflict on {error.field}"
        finally:
            connection.close()

    with ThreadPoolExecutor(len(NAMES)) as pool:
        return sorted(pool.map(create, NAMES))
