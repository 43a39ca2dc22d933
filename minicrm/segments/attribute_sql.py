"""SQL expressions over one key of `Customer.attributes`, the same answer on every database.

Django's `KT()` gives a key's value as text, but each database renders non-text values its own
way (SQLite's `json_extract` returns a JSON true as 1, MariaDB's `JSON_UNQUOTE` a JSON null as
'null', PostgreSQL's `->>` both as 'true' / NULL). A rule compares an attribute as text, as a
number or as true/false, so each expression here first checks the JSON type of the value:

- `text`: the value if it is a JSON string, else "" (missing, null, a number or a boolean is
  no text, so a text negation includes it, as the empty text does elsewhere);
- `number`: the value if it is a JSON number, else NULL (never equal to anything);
- `true`: 1 if the value is JSON true, else 0 (never NULL, so its negation is a complement);
- `empty`: 1 if the key is missing, JSON null or the empty string, else 0.

The column is JSON text on SQLite, jsonb on PostgreSQL and a checked LONGTEXT on MariaDB/MySQL.
The key reaches the database as a parameter (a JSON path or a jsonb key); rules only accept
keys of letters, digits, spaces, '_' and '-' (see `rules.ATTRIBUTE_KEY`).
"""

from typing import Any, Literal

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Expression, F, FloatField, IntegerField
from django.db.models.sql.compiler import SQLCompiler

Kind = Literal["text", "number", "true", "empty"]

OUTPUT_FIELDS = {
    "text": CharField,
    "number": FloatField,  # compared with float parameters: no text-vs-number surprises
    "true": IntegerField,
    "empty": IntegerField,
}


def json_path(key: str) -> str:
    return f'$."{key}"'


class AttributeValue(Expression):
    """One key of the customer's attributes, read as `kind` (see the module docstring)."""

    def __init__(self, key: str, kind: Kind) -> None:
        super().__init__(output_field=OUTPUT_FIELDS[kind]())
        self.key = key
        self.kind = kind
        self.column: Any = F("attributes")

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Any) -> None:
        (self.column,) = exprs

    def resolve_expression(self, *args: Any, **kwargs: Any) -> "AttributeValue":
        clone = self.copy()
        clone.column = self.column.resolve_expression(*args, **kwargs)
        return clone

    def _column(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> str:
        sql, params = compiler.compile(self.column)
        assert not params  # a plain column
        return str(sql)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        column, path = self._column(compiler, connection), json_path(self.key)
        kind = f"json_type({column}, %s)"
        value = f"json_extract({column}, %s)"
        if self.kind == "text":
            return f"(CASE WHEN {kind} = 'text' THEN {value} ELSE '' END)", [path, path]
        if self.kind == "number":
            return (
                f"(CASE WHEN {kind} IN ('integer', 'real') THEN CAST({value} AS REAL) END)",
                [path, path],
            )
        if self.kind == "true":
            return f"(CASE WHEN {kind} = 'true' THEN 1 ELSE 0 END)", [path]
        return (
            f"(CASE WHEN {kind} IS NULL OR {kind} = 'null' "
            f"OR ({kind} = 'text' AND length({value}) = 0) THEN 1 ELSE 0 END)",
            [path, path, path, path],
        )

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        column, key = self._column(compiler, connection), self.key
        item = f"({column} -> %s)"
        kind = f"jsonb_typeof{item}"
        if self.kind == "text":
            return f"(CASE WHEN {kind} = 'string' THEN ({column} ->> %s) ELSE '' END)", [key, key]
        if self.kind == "number":
            return (
                f"(CASE WHEN {kind} = 'number' THEN ({column} ->> %s)::double precision END)",
                [key, key],
            )
        if self.kind == "true":
            return f"(CASE WHEN {item} = 'true'::jsonb THEN 1 ELSE 0 END)", [key]
        return (
            f"(CASE WHEN {item} IS NULL OR {item} IN ('null'::jsonb, '\"\"'::jsonb) "
            "THEN 1 ELSE 0 END)",
            [key, key],
        )

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        column, path = self._column(compiler, connection), json_path(self.key)
        item = f"JSON_EXTRACT({column}, %s)"
        kind = f"JSON_TYPE({item})"
        text = f"JSON_UNQUOTE({item})"
        if self.kind == "text":
            return f"(CASE WHEN {kind} = 'STRING' THEN {text} ELSE '' END)", [path, path]
        if self.kind == "number":
            numbers = "('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')"
            return (
                f"(CASE WHEN {kind} IN {numbers} THEN CAST({text} AS DOUBLE) END)",
                [path, path],
            )
        if self.kind == "true":
            return (
                f"(CASE WHEN {kind} = 'BOOLEAN' AND {text} = 'true' THEN 1 ELSE 0 END)",
                [path, path],
            )
        # CHAR_LENGTH, not = '': PAD SPACE collations take "  " for "".
        return (
            f"(CASE WHEN {item} IS NULL OR {kind} = 'NULL' "
            f"OR ({kind} = 'STRING' AND CHAR_LENGTH({text}) = 0) THEN 1 ELSE 0 END)",
            [path, path, path, path],
        )

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        raise NotImplementedError(f"Attribute rules are not supported on {connection.vendor}")
