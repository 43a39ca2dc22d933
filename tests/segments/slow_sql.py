"""A query that runs for seconds on each supported database (to trip a statement timeout)."""

from django.db import connection

SLOW_SQL = {
    "sqlite": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000)"
    " SELECT COUNT(*) FROM r",
    "postgresql": "SELECT pg_sleep(30)",
    "mysql": "SELECT SLEEP(30)",
}


def run_slow_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute(SLOW_SQL[connection.vendor])
        cursor.fetchall()
