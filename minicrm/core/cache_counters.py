"""A counter in Django's cache that counts right under concurrency, whatever the backend.

`cache.add(key, 0)` then `cache.incr(key)` is atomic on Redis (INCRBY) and on the local-memory
cache (a lock), but Django's database cache implements `incr` as a read then a write: two
processes can both read 4 and both write 5. For that backend the read and the write happen
in one transaction holding the cache row's lock (SELECT … FOR UPDATE on PostgreSQL and MariaDB;
on SQLite our transactions BEGIN IMMEDIATE, which holds the database's write lock), run again
if the database picks it as a deadlock victim.
"""

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router

from .db_retry import atomic_with_retry


def cache_count(key: str, *, timeout: int, alias: str = "default") -> int:
    """Add one to the counter `key` (born at 0, living `timeout` seconds); return the new count."""
    backend = caches[alias]
    if isinstance(backend, DatabaseCache):
        return _database_count(backend, key, timeout)
    return _native_count(backend, key, timeout)


def _native_count(backend: BaseCache, key: str, timeout: int) -> int:
    backend.add(key, 0, timeout=timeout)
    try:
        return int(backend.incr(key))
    except ValueError:
        # The counter expired between add and incr: a new window starts with this request.
        backend.add(key, 0, timeout=timeout)
        return int(backend.incr(key))


def _database_count(backend: DatabaseCache, key: str, timeout: int) -> int:
    # The row is made before, not inside, the counting transaction: on MariaDB two transactions
    # that both tried to insert it would each keep a shared lock on it and deadlock on the
    # FOR UPDATE that follows. A concurrent first add loses on the primary key: the row exists.
    backend.add(key, 0, timeout=timeout)
    return atomic_with_retry(lambda: _database_increment(backend, key, timeout))


def _database_increment(backend: DatabaseCache, key: str, timeout: int) -> int:
    connection = connections[router.db_for_write(backend.cache_model_class)]
    if connection.features.has_select_for_update:
        quote = connection.ops.quote_name
        table = quote(backend.cache_model_class._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('cache_key')} FROM {table} "  # noqa: S608
                f"WHERE {quote('cache_key')} = %s FOR UPDATE",
                [backend.make_and_validate_key(key)],
            )
    count = int(backend.get(key, 0)) + 1
    backend.set(key, count, timeout=timeout)
    return count
