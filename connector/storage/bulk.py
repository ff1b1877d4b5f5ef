"""Multi-row statements for batch writers, with parameters converted once.

SQLAlchemy processes every parameter of every row (type processors, one
parameter dict per row, insertmanyvalues batching). On SQLite a batch
statement is instead rendered once per row count as plain SQL with `?`
placeholders and run on the DB-API cursor with one flat tuple; a batch's
timestamp is converted once (by `UTCDateTime`, so the stored text is exactly
what SQLAlchemy writes) and JSON values with the engine's own serialiser. On
PostgreSQL (asyncpg) a batch statement takes one array per column and
`unnest`s them: one statement text for any number of rows, prepared once per
connection, run on the driver's cursor with values converted per column as
SQLAlchemy would (timestamps to naive UTC, JSON to text) and RETURNING values
converted back. Other dialects go through the same statement as SQLAlchemy Core.

Callers build rows as tuples in `Bulk.columns` order, with values from
`Writer.stamp` and `Writer.json`, and get back the RETURNING rows as tuples in
`Bulk.returning` order, in no particular row order.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

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
                   f"VALUES {', '.join([one] * rows)}") + self._tail("?")
            self._sql[rows] = sql
        return sql

    def _tail(self, where: str) -> str:
        """The upsert and RETURNING clauses; `where` is the placeholder of `where_param`."""
        sql = ""
        if self.on_conflict:
            sets = ", ".join(f"{c} = excluded.{c}" for c in self.update)
            sql += f" ON CONFLICT ({', '.join(self.on_conflict)}) DO UPDATE SET {sets}"
            if self.update_where:
                sql += f" WHERE {self.table.name}.{self.update_where} < {where}"
        if self.returning:
            sql += f" RETURNING {', '.join(self.returning)}"
        return sql

    @functools.cached_property
    def postgresql(self) -> tuple[str, list[Callable[[Any], Any] | None],
                                  list[Callable[[Any], Any] | None]]:
        """PostgreSQL SQL taking one array per column (`$1`..`$n`, then `where_param`), and
        the converters of each column's values and of each RETURNING value (None: as is)."""
        t = self.table
        source, to_driver = pg_unnest(t, self.columns)
        # Names come from the table definition, values are all parameters: nothing from input.
        where = (f"${len(self.columns) + 1}::{_pg_type(t.c[self.update_where].type)}"
                 if self.update_where else "")
        sql = (f"INSERT INTO {t.name} ({', '.join(self.columns)}) "  # noqa: S608
               f"SELECT * FROM {source}") + self._tail(where)
        return sql, to_driver, from_driver(t, self.returning)

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


@dataclass(frozen=True)
class BulkUpdate:
    """An `UPDATE` of many rows by `key`, each row setting `columns`: rows are tuples of
    the `columns` values, then the key."""

    table: sa.Table
    key: str
    columns: tuple[str, ...]

    @functools.cached_property
    def sqlite(self) -> str:
        sets = ", ".join(f"{c} = ?" for c in self.columns)
        return f"UPDATE {self.table.name} SET {sets} WHERE {self.key} = ?"  # noqa: S608

    @functools.cached_property
    def postgresql(self) -> tuple[str, list[Callable[[Any], Any] | None]]:
        """One statement for any number of rows (`unnest`), and each value's converter."""
        return self.postgresql_from(1)

    def postgresql_from(self, first: int) -> tuple[str, list[Callable[[Any], Any] | None]]:
        """`postgresql` with its parameters numbered from `$first` (to go into a larger
        statement)."""
        t, names = self.table, (*self.columns, self.key)
        source, to_driver = pg_unnest(t, names, first)
        sets = ", ".join(f"{c} = v.{c}" for c in self.columns)
        sql = (f"UPDATE {t.name} SET {sets} FROM {source} "  # noqa: S608
               f"AS v({', '.join(names)}) WHERE {t.name}.{self.key} = v.{self.key}")
        return sql, to_driver

    @functools.cached_property
    def core(self) -> Any:
        t = self.table
        return sa.update(t).where(t.c[self.key] == sa.bindparam("v_" + self.key)).values(
            {c: sa.bindparam("v_" + c) for c in self.columns})


_PG = postgresql.dialect()


def _pg_type(type_: Any) -> str:
    """The column's type for a cast, without a length: a cast to VARCHAR(n) would cut a
    longer value, where the insert into the column refuses it."""
    return re.sub(r"^(VARCHAR|CHAR)\(\d+\)$", r"\1", type_.compile(dialect=_PG))


def pg_unnest(table: sa.Table, columns: Sequence[str], first: int = 1,
              ) -> tuple[str, list[Callable[[Any], Any] | None]]:
    """`unnest($first::T[], ...)`: one array parameter per column of `table`, and each
    column's converter for `Writer.run_postgresql`'s parameters."""
    params = ", ".join(f"${n}::{_pg_type(table.c[c].type)}[]"
                       for n, c in enumerate(columns, first))
    return f"unnest({params})", [_to_driver(table.c[c].type) for c in columns]


def from_driver(table: sa.Table, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """How values of `columns` come back from asyncpg as SQLAlchemy would return them."""
    return [_from_driver(table.c[c].type) for c in columns]


def arrays(to_driver: list[Callable[[Any], Any] | None],
           rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Rows as one list per column, each value converted for the driver."""
    return [list(column) if convert is None else [convert(v) for v in column]
            for convert, column in zip(to_driver, zip(*rows, strict=True), strict=True)]


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _STAMP.process_bind_param(value, _PG)  # type: ignore[no-any-return]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _to_driver(type_: Any) -> Callable[[Any], Any] | None:
    """How a column's values go to asyncpg as SQLAlchemy would send them: `UTCDateTime`
    as naive UTC, JSON as text (None as JSON null, as in Core); others as they are."""
    if isinstance(type_, UTCDateTime):
        return naive_utc
    if isinstance(type_, sa.JSON):
        return json_dumps
    return None


def _from_driver(type_: Any) -> Callable[[Any], Any] | None:
    return _aware if isinstance(type_, UTCDateTime) else None


class Writer:
    """Runs `Bulk` statements on one synchronous connection (see module docstring)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.raw = conn.dialect.name == "sqlite"
        #: PostgreSQL through asyncpg (under `run_sync`): `Bulk` statements on its cursor.
        self.arrays = conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg"
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

    def update(self, bulk: BulkUpdate, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run `bulk` for `rows` (see `BulkUpdate`): one statement on PostgreSQL, one
        prepared statement run per row on SQLite."""
        if not rows:
            return
        if self.arrays:
            sql, to_driver = bulk.postgresql
            self.run_postgresql(sql, arrays(to_driver, rows))
        elif self.raw:
            cursor = self._cursor()
            try:
                cursor.executemany(bulk.sqlite, rows)
            finally:
                cursor.close()
        else:
            names = ["v_" + c for c in (*bulk.columns, bulk.key)]
            self.conn.execute(bulk.core, [dict(zip(names, row, strict=True)) for row in rows])

    def _cursor(self) -> Any:
        # The DB-API connection as SQLAlchemy holds it: sqlite3 itself, or the aiosqlite
        # adapter (under `run_sync`), which has the same synchronous cursor interface.
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def run(self, bulk: Bulk, rows: Sequence[tuple[Any, ...]],
            where: Any = None) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        if self.arrays:
            return self._run_arrays(bulk, rows, where)
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

    def _run_arrays(self, bulk: Bulk, rows: Sequence[tuple[Any, ...]],
                    where: Any) -> list[tuple[Any, ...]]:
        sql, to_driver, back = bulk.postgresql
        params = arrays(to_driver, rows)
        if bulk.update_where:
            params.append(naive_utc(where))
        return self.run_postgresql(sql, params, back)

    def run_postgresql(self, sql: str, params: list[Any],
                       back: Sequence[Callable[[Any], Any] | None] = ()) -> list[tuple[Any, ...]]:
        """PostgreSQL (`arrays`): `sql` with `params` (converted for the driver: `arrays`,
        `naive_utc`) on the driver's cursor. `back` has one converter (`from_driver`) per
        RETURNING column: the rows returned, converted; no `back`, nothing is fetched."""
        fetched = self._on_cursor(sql, params, fetch=bool(back))
        if not any(back):
            return [tuple(r) for r in fetched]
        return [tuple(v if f is None else f(v) for f, v in zip(back, r, strict=True))
                for r in fetched]

    def _on_cursor(self, sql: str, params: list[Any], *, fetch: bool) -> list[Any]:
        """Run `sql` on the driver's cursor (PostgreSQL), its errors raised as SQLAlchemy
        raises them for a statement of its own (`IntegrityError`, ...)."""
        cursor = self._cursor()
        dbapi_error = self._dialect.loaded_dbapi.Error
        try:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else []  # type: ignore[no-any-return]
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error, hide_parameters=True,
                                             dialect=self._dialect) from exc
        finally:
            cursor.close()
