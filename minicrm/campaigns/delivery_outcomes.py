"""A batch's outcomes written in a few set-based statements: UPDATE ... FROM a list of values.

Each delivery of a batch gets its own status, address, rendered message, vendor id and error,
so one plain UPDATE cannot write them; Django's bulk_update builds a CASE per column over every
row, which costs the worker about 2 s of Python per 500 rows. Here the rows are joined by id to
a VALUES list (a UNION ALL derived table on MariaDB, whose VALUES has no column names), one
statement per chunk that fits the database's parameter limit.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection

from .models import Delivery


class Written(NamedTuple):
    """One delivery's outcome, as stored."""

    id: int
    status: str
    to: str
    subject: str
    body: str
    vendor_id: str | None
    sent_at: datetime | None
    error: str


COLUMNS = Written._fields[1:]
# PostgreSQL needs the types of a VALUES list whose column may be all NULL.
_PG_TYPES = ("bigint", "varchar", "varchar", "varchar", "text", "varchar", "timestamptz", "varchar")


def _chunks(rows: Sequence[Written]) -> list[Sequence[Written]]:
    limit = connection.features.max_query_params or 10_000
    size = max(1, min(1_000, limit // len(Written._fields)))
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _sql(count: int) -> str:
    qn = connection.ops.quote_name
    table = qn(Delivery._meta.db_table)
    released = f"{qn('batch_token')} = '', {qn('batch_expires_at')} = NULL"
    if connection.vendor == "postgresql":
        row = "(" + ", ".join(f"%s::{kind}" for kind in _PG_TYPES) + ")"
        names = ", ".join(qn(name) for name in Written._fields)
        sets = ", ".join(f"{qn(name)} = v.{qn(name)}" for name in COLUMNS)
        return (
            f"UPDATE {table} SET {sets}, {released} "  # noqa: S608 - names from the model
            f"FROM (VALUES {', '.join([row] * count)}) AS v({names}) WHERE {table}.id = v.id"
        )
    if connection.vendor == "sqlite":
        row = "(" + ", ".join(["%s"] * len(Written._fields)) + ")"
        sets = ", ".join(f"{qn(name)} = v.column{n}" for n, name in enumerate(COLUMNS, start=2))
        return (
            f"UPDATE {table} SET {sets}, {released} "  # noqa: S608 - names from the model
            f"FROM (VALUES {', '.join([row] * count)}) AS v WHERE {table}.id = v.column1"
        )
    if connection.vendor == "mysql":
        first = "SELECT " + ", ".join(f"%s AS {qn(name)}" for name in Written._fields)
        rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(Written._fields))
        sets = ", ".join(f"d.{qn(name)} = v.{qn(name)}" for name in COLUMNS)
        released = f"d.{qn('batch_token')} = '', d.{qn('batch_expires_at')} = NULL"
        return (
            f"UPDATE {table} AS d JOIN ({first}{rest * (count - 1)}) AS v "  # noqa: S608
            f"ON d.id = v.id SET {sets}, {released}"
        )
    raise NotImplementedError(f"No batch write for the {connection.vendor} database")


def deliveries_write(rows: Sequence[Written]) -> int:
    """Store each row's outcome and release it from its batch; returns how many rows changed.

    Call inside the transaction that moves the campaign's counters with them."""
    adapt = connection.ops.adapt_datetimefield_value
    changed = 0
    with connection.cursor() as cursor:
        for chunk in _chunks(rows):
            params: list[Any] = []
            for row in chunk:
                params.extend(row[:6])
                params.append(adapt(row.sent_at))
                params.append(row.error)
            cursor.execute(_sql(len(chunk)), params)
            changed += cursor.rowcount
    return changed
