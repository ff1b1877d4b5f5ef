"""Multi-row statements for batch writers, with parameters converted once.

SQLAlchemy processes every parameter of every row (type processors, one
parameter dict per row, insertmanyvalues batching). On SQLite a batch
statement is instead rendered once per row count as plain SQL with `?`
placeholders and run on the DB-API cursor with one flat tuple; a batch's
timestamp is converted once (by `UTCDateTime`, so the stored text is exactly
what SQLAlchemy writes) and JSON values with the engine's own serialiser. On
other dialects the same rows go through the same statement as SQLAlchemy Core.

Callers build rows as tuples in `Bulk.columns` order, with values from
`Writer.stamp` and `Writer.json`, and get back the RETURNING rows as tuples in
`Bulk.returning` order, in no particular row order.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.storage.db import UTCDateTime, dialect_insert, json_dumps

#: Rows per statement on SQLite: stays far below its 32,766 bound parameters.
CHUNK = 400

_STAMP = UTCDateTime()


@dataclass(frozen=True)
class Bulk:
    """An `INSERT` of many rows, optionally an upsert, optionally `RETURNING`.

    `on_conflict` names the unique columns; `update` the columns then taken
    from the new row; `update_where` is a condition on the existing row with
    one parameter, `where_param`, passed once per statement.
    """

    table: sa.Table
    columns: tuple[str, ...]
    returning: tuple[str, ...] = ()
    on_conflict: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    update_where: str | None = None
    where_param: str | None = None
    _sql: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def sqlite(self, rows: int) -> str:
        """Plain SQLite SQL for `rows` rows, rendered once per row count."""
        sql = self._sql.get(rows)
        if sql is None:
            one = "(" + ", ".join("?" * len(self.columns)) + ")"
            # Names come from the table definition, values are all `?`: nothing from input.
            sql = (f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) "  # noqa: S608
                   f"VALUES {', '.join([one] * rows)}")
            if self.on_conflict:
                sets = ", ".join(f"{c} = excluded.{c}" for c in self.update)
                sql += f" ON CONFLICT ({', '.join(self.on_conflict)}) DO UPDATE SET {sets}"
                if self.update_where:
                    sql += f" WHERE {self.table.name}.{self.update_where} < ?"
            if self.returning:
                sql += f" RETURNING {', '.join(self.returning)}"
            self._sql[rows] = sql
        return sql

    @functools.cache  # noqa: B019 - a handful of module-level instances, kept for good
    def core(self, dialect: str) -> Any:
        """The same statement in SQLAlchemy Core, for executemany with dict rows."""
        t = self.table
        stmt = dialect_insert(t, dialect) if self.on_conflict else sa.insert(t)
        if self.on_conflict:
            where = None
            if self.update_where:
                where = t.c[self.update_where] < sa.bindparam(self.where_param,
                                                              type_=UTCDateTime)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(self.on_conflict),
                set_={c: stmt.excluded[c] for c in self.update}, where=where)
        if self.returning:
            stmt = stmt.returning(*(t.c[c] for c in self.returning))
        return stmt


class Writer:
    """Runs `Bulk` statements on one synchronous connection (see module docstring)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.raw = conn.dialect.name == "sqlite"
        self._dialect = conn.dialect

    def stamp(self, value: dt.datetime) -> Any:
        """A timestamp as the driver takes it (convert once, use for many rows)."""
        return _STAMP.process_bind_param(value, self._dialect) if self.raw else value

    def json(self, value: Any) -> Any:
        """A JSON column's value as the driver takes it (None is JSON null, as in Core)."""
        return json_dumps(value) if self.raw else value

    def execute(self, core: Any, params: dict[str, Any] | list[dict[str, Any]], sqlite: str,
                values: Sequence[Any] | list[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """One statement, or one per row when `values` is a list of rows: on SQLite
        `sqlite` (plain SQL, `?` placeholders) with `values` on the DB-API cursor,
        elsewhere `core` with `params`. Returns the rows it returns, as tuples."""
        if not self.raw:
            result = self.conn.execute(core, params)
            return [tuple(r) for r in result] if result.returns_rows else []
        cursor = self._cursor()
        try:
            if isinstance(values, list):
                cursor.executemany(sqlite, values)
                return []
            cursor.execute(sqlite, values)
            return cursor.fetchall()
        finally:
            cursor.close()

    def _cursor(self) -> Any:
        # The DB-API connection as SQLAlchemy holds it: sqlite3 itself, or the aiosqlite
        # adapter (under `run_sync`), which has the same synchronous cursor interface.
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def run(self, bulk: Bulk, rows: Sequence[tuple[Any, ...]],
            where: Any = None) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        if not self.raw:
            params = [dict(zip(bulk.columns, row, strict=True)) for row in rows]
            if bulk.where_param:
                for p in params:
                    p[bulk.where_param] = where
            result = self.conn.execute(bulk.core(self._dialect.name), params)
            return [tuple(r) for r in result] if bulk.returning else []
        cursor = self._cursor()
        out: list[tuple[Any, ...]] = []
        try:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start:start + CHUNK]
                flat = [v for row in chunk for v in row]
                if bulk.update_where:
                    flat.append(self.stamp(where))
                cursor.execute(bulk.sqlite(len(chunk)), flat)
                if bulk.returning:
                    out.extend(cursor.fetchall())
        finally:
            cursor.close()
        return out
