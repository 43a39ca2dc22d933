"""Where reads go when a read replica is configured (DATABASE_REPLICA_URL, docs/scaling.md).

Reads go to the primary ("default") unless they run inside `replica_reads()`
(minicrm.core.replica), and even there they stay on the primary once this unit of work (a
request, or one `replica_reads` block outside any request) has written, or while the client is
pinned because it wrote a few seconds ago: a replica lags, and people expect to see what they
just saved. Writes and migrations always go to the primary.

A write is seen as the SQL itself (INSERT, UPDATE, DELETE, REPLACE on the primary), so the raw
bulk writes of ingestion count as much as the ORM's; writes to the session and the database
cache tables do not, or every API call's rate-limit counter would keep its reads off the replica.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

REPLICA_DB_ALIAS = "replica"
# Infrastructure stored in the database that must be read where it was just written, whatever
# the block: Django's database cache (`CacheEntry._meta.app_label`) and the sessions.
PRIMARY_ONLY_APP_LABELS = frozenset({"django_cache", "sessions"})
SESSION_TABLE = "django_session"
_WRITE = re.compile(
    r"\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+([\w.`\"]+)",
    re.IGNORECASE,
)


@dataclass
class ReadsUnit:
    """What decides one unit of work's reads: whether it wrote, or its client did just before."""

    pinned: bool = False
    wrote: bool = False

    def on_primary(self) -> bool:
        return self.pinned or self.wrote


_unit: ContextVar[ReadsUnit | None] = ContextVar("minicrm_reads_unit", default=None)
_replica_block: ContextVar[bool] = ContextVar("minicrm_replica_block", default=False)


def replica_configured() -> bool:
    return REPLICA_DB_ALIAS in settings.DATABASES


def current_unit() -> ReadsUnit | None:
    return _unit.get()


def read_alias() -> str:
    """The database a read made here and now goes to."""
    if not _replica_block.get() or not replica_configured():
        return DEFAULT_DB_ALIAS
    unit = _unit.get()
    if unit is not None and unit.on_primary():
        return DEFAULT_DB_ALIAS
    return REPLICA_DB_ALIAS


@contextmanager
def reads_unit(unit: ReadsUnit) -> Iterator[ReadsUnit]:
    """Run the block as `unit`: its writes on the primary are recorded in it."""
    token = _unit.set(unit)
    try:
        with connections[DEFAULT_DB_ALIAS].execute_wrapper(_write_detector(unit)):
            yield unit
    finally:
        _unit.reset(token)


@contextmanager
def replica_block() -> Iterator[None]:
    """Let reads inside go to the replica (see `read_alias` for when they still do not)."""
    token = _replica_block.set(True)
    try:
        yield
    finally:
        _replica_block.reset(token)


def in_replica_block() -> bool:
    return _replica_block.get()


@cache
def _pin_ignored_tables() -> frozenset[str]:
    tables = {SESSION_TABLE}
    for cache_settings in settings.CACHES.values():
        if cache_settings.get("BACKEND") == "django.core.cache.backends.db.DatabaseCache":
            tables.add(cache_settings["LOCATION"])
    return frozenset(table.lower() for table in tables)


def sql_writes(sql: str) -> bool:
    """Whether a statement changes rows that a reader may expect to see (not sessions, cache)."""
    found = _WRITE.match(sql)
    if found is None:
        return False
    table = found.group(1).rsplit(".", 1)[-1].strip('`"').lower()
    return table not in _pin_ignored_tables()


def _write_detector(unit: ReadsUnit) -> Callable[..., Any]:
    def detect(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not unit.wrote and sql_writes(sql):
            unit.wrote = True
        return execute(sql, params, many, context)

    return detect


class ReplicaRouter:
    """Django's database router for the primary and its read replica."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if model._meta.app_label in PRIMARY_ONLY_APP_LABELS:
            return DEFAULT_DB_ALIAS
        return read_alias()

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        # Explicitly the primary: left to Django, an instance read from the replica would be
        # saved back where it came from.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        aliases = {DEFAULT_DB_ALIAS, REPLICA_DB_ALIAS}
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True  # the same data: a replica row may point at a primary row
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if db == REPLICA_DB_ALIAS:
            return False  # the replica follows the primary's schema by replication
        return None
