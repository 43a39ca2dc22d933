"""Portable bulk-write helpers for the ingestion services and the demo data generator.

Building model instances costs more than the database itself at 50,000 rows a second, so bulk
writes are `executemany` calls over statements built from model metadata, with values converted
by the backend's own adapters (the ones the ORM uses). The same code runs on SQLite, PostgreSQL
and MariaDB: Django's cursor takes `%s` placeholders on all three.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

T = TypeVar("T")
DatetimeAdapter = Callable[[datetime | None], Any]


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Slices small enough for one `IN (...)` list on every backend."""
    # SQLite, as Django configures it, takes at most 999 parameters in one statement.
    size = connection.features.max_query_params or 5000
    for start in range(0, len(items), size):
        yield items[start : start + size]


def column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a concrete column")
    return connection.ops.quote_name(field.column)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def insert_sql(model: type[Model], names: Sequence[str]) -> str:
    columns = ", ".join(column(model, name) for name in names)
    marks = ", ".join(["%s"] * len(names))
    # Identifiers come from model metadata, quoted; every value is a parameter.
    return f"INSERT INTO {table(model)} ({columns}) VALUES ({marks})"  # noqa: S608


def update_sql(model: type[Model], assignments: Sequence[str]) -> str:
    """`UPDATE ... WHERE id = %s`; each assignment is a field name or a ready `column = expr`."""
    parts = [part if "=" in part else f"{column(model, part)} = %s" for part in assignments]
    where = column(model, "id")
    return f"UPDATE {table(model)} SET {', '.join(parts)} WHERE {where} = %s"  # noqa: S608


def executemany(sql: str, params: list[tuple[Any, ...]]) -> None:
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def ids_by_key(
    model: type[Model], key: str, values: Sequence[str], *, lock: bool = False
) -> dict[str, int]:
    """Map each of `values` found in the `key` column to its row id (FOR UPDATE if `lock`)."""
    return {found: row[0] for found, row in rows_by_key(model, key, values, ["id"], lock=lock)}


def rows_by_key(
    model: type[Model],
    key: str,
    values: Sequence[str],
    names: Sequence[str],
    *,
    lock: bool = False,
) -> list[tuple[str, tuple[Any, ...]]]:
    """The raw `names` columns of each row whose `key` is one of `values` (FOR UPDATE if `lock`).

    The ORM prepares every value of an `IN (...)` list on its own; at 10,000 keys a batch that
    costs more than the query, so this reads with one plain statement per chunk. Values come as
    the driver returns them (SQLite: decimals as floats). Locked rows are locked in id order, the
    order every writer uses, so two batches naming the same rows in any order cannot deadlock.
    """
    found: list[tuple[str, tuple[Any, ...]]] = []
    key_column, id_column = column(model, key), column(model, "id")
    columns = ", ".join([key_column, *(column(model, name) for name in names)])
    lock_clause = ""
    if lock and connection.features.has_select_for_update:
        lock_clause = " " + connection.ops.for_update_sql()
    with connection.cursor() as cursor:
        for chunk in chunks(sorted(values)):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT {columns} FROM {table(model)} "  # noqa: S608
                f"WHERE {key_column} IN ({marks}) ORDER BY {id_column}{lock_clause}",
                list(chunk),
            )
            found += [(row[0], tuple(row[1:])) for row in cursor.fetchall()]
    return found


def datetime_adapter() -> DatetimeAdapter:
    """The backend's conversion of aware datetimes, without its per-call checks where it can.

    SQLite and MariaDB store naive text in the connection's time zone, exactly as Django's
    `adapt_datetimefield_value` does; at two datetimes per order its checks cost a tenth of the
    time budget. PostgreSQL takes aware datetimes as they are.
    """
    if connection.vendor not in ("sqlite", "mysql"):
        return connection.ops.adapt_datetimefield_value
    zone = connection.timezone

    def adapt(value: datetime | None) -> Any:
        return None if value is None else str(value.astimezone(zone).replace(tzinfo=None))

    return adapt


def json_adapter(model: type[Model], name: str) -> Callable[[Any], Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return lambda value: field.get_db_prep_save(value, connection)
