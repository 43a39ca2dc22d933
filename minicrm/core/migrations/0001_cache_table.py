"""The table of the database cache (the default cache without REDIS_URL), made by `migrate`.

Django leaves it to a separate `createcachetable`, which every other setup step forgets: sign-in
then fails with "no such table". The table is made by Django's own command code, so it is the
same on SQLite, PostgreSQL and MariaDB, and a database where `createcachetable` already ran
keeps its table.
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# Also the LOCATION of the database cache in config/settings/base.py.
CACHE_TABLE = "minicrm_cache"


def create_cache_table(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, CACHE_TABLE, dry_run=False)


def drop_cache_table(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    connection = schema_editor.connection
    if CACHE_TABLE in connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {connection.ops.quote_name(CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = []

    operations = [migrations.RunPython(create_cache_table, drop_cache_table, elidable=False)]
