"""A model's rows read and written with SQL built once per process.

Every order status change runs the same few statements: lock the order (with its outlet),
read its items, save its status, insert its event. Django compiles a queryset's SQL anew on
every run, and for these statements compiling costs more than the round trip itself (on the
bench machine about 1 ms of CPU to compile the order lock with its outlet join and 0.7 ms for
the items, against 0.3 ms to send either and read the answer). ``Table`` holds what the ORM
would work out each time: a model's column list, each column's converters and the statements
that save or insert an instance; it turns rows back into instances as the ORM does
(``Model.from_db`` after the backend's and the fields' converters, so SQLite's strings become
UUIDs, decimals and datetimes as they do through a queryset), and saves through the fields'
own ``pre_save`` and ``get_db_prep_save`` (``auto_now`` included).

What it does not do is what these statements do not need: no signals are sent (the project
registers no model signal receivers; a test keeps it that way), no deferred fields, no
inheritance. Services use it only where a statement runs on every write; everywhere else the
ORM is the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.expressions import Col

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


def _db() -> BaseDatabaseWrapper:
    """This thread's connection to the default database (the outbox's), looked up once per
    call: every attribute read through ``django.db.connection`` is a thread-local lookup, and
    preparing a row's values reads the connection for each field."""
    return connections[DEFAULT_DB_ALIAS]


class _Compiled:
    """What one ``Table`` needs for one database backend."""

    __slots__ = ("by_name", "columns", "converters", "insert_fields", "insert_sql", "updates")

    def __init__(self, model: type[Model], alias: str, db: BaseDatabaseWrapper) -> None:
        quote = db.ops.quote_name
        fields = model._meta.concrete_fields
        self.columns = ", ".join(f"{alias}.{quote(field.column)}" for field in fields)
        self.converters: list[tuple[int, list[Converter], Col]] = []
        self.by_name: dict[str, tuple[list[Converter], Col]] = {}
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            found = db.ops.get_db_converters(column) + column.get_db_converters(db)
            self.by_name[field.name] = (found, column)
            if found:
                self.converters.append((index, found, column))
        pk = model._meta.pk
        self.insert_fields = [field for field in fields if field is not pk or not pk.db_returning]
        table = quote(model._meta.db_table)
        names = ", ".join(quote(field.column) for field in self.insert_fields)
        # The statement around its rows of values: "INSERT ... VALUES " and " RETURNING pk".
        self.insert_sql: tuple[str, str] = (
            f"INSERT INTO {table} ({names}) VALUES ",  # noqa: S608
            f" RETURNING {quote(pk.column)}",
        )
        self.updates: dict[tuple[str, ...], tuple[str, list[Any]]] = {}


class Table(Generic[M]):
    """One model's columns under one SQL alias (``o`` in ``FROM orders_order o``)."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.width = len(model._meta.concrete_fields)
        self._attnames = [field.attname for field in model._meta.concrete_fields]
        self.key_index = self._attnames.index(model._meta.pk.attname)  # the pk's column
        self._compiled: dict[str, _Compiled] = {}

    def _compiled_for(self, db: BaseDatabaseWrapper) -> _Compiled:
        compiled = self._compiled.get(db.vendor)
        if compiled is None:
            compiled = self._compiled[db.vendor] = _Compiled(self.model, self.alias, db)
        return compiled

    # --- building SQL -------------------------------------------------------------------------
    @property
    def columns(self) -> str:
        """The model's concrete columns, qualified by the alias, in field order."""
        return self._compiled_for(_db()).columns

    @property
    def table(self) -> str:
        """``<quoted table> <alias>``, for a FROM or JOIN clause."""
        return f"{_db().ops.quote_name(self.model._meta.db_table)} {self.alias}"

    def column(self, name: str) -> str:
        """One field's column, qualified by the alias: ``o."status"``."""
        return f"{self.alias}.{_db().ops.quote_name(self.model._meta.get_field(name).column)}"

    def select(self, names: Sequence[str]) -> str:
        """The columns of fields ``names``, qualified, for a SELECT list (see ``values``)."""
        return ", ".join(self.column(name) for name in names)

    def param(self, name: str, value: Any) -> Any:
        """``value`` as a query parameter compared with field ``name``'s column."""
        return self.model._meta.get_field(name).get_db_prep_value(value, _db())

    # --- reading ------------------------------------------------------------------------------
    def instance(self, row: Sequence[Any], start: int = 0) -> M:
        """The instance stored in ``row[start:start + width]``, as a queryset would give it."""
        db = _db()
        values = list(row[start : start + self.width])
        for index, converters, column in self._compiled_for(db).converters:
            value = values[index]
            for convert in converters:
                value = convert(value, column, db)
            values[index] = value
        return self.model.from_db(db.alias, self._attnames, values)

    def value(self, name: str, raw: Any) -> Any:
        """One column of field ``name`` as read by a queryset (its converters applied)."""
        db = _db()
        converters, column = self._compiled_for(db).by_name[name]
        for convert in converters:
            raw = convert(raw, column, db)
        return raw

    def values(self, names: Sequence[str], row: Sequence[Any], start: int = 0) -> list[Any]:
        """The values of fields ``names`` in ``row[start:]`` as a queryset's ``values()`` would
        give them (each column's converters applied)."""
        return [self.value(name, raw) for name, raw in zip(names, row[start:], strict=False)]

    # --- writing ------------------------------------------------------------------------------
    def update(self, instance: M, fields: Iterable[str]) -> None:
        """``instance.save(update_fields=fields)`` without the ORM's compiling (and without
        signals): the fields' ``pre_save`` runs, so ``auto_now`` columns get the time."""
        db = _db()
        compiled = self._compiled_for(db)
        names = tuple(fields)
        built = compiled.updates.get(names)
        if built is None:
            meta = self.model._meta
            chosen = [meta.get_field(name) for name in names]
            quote = db.ops.quote_name
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in chosen)
            sql = (f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
                   f"WHERE {quote(meta.pk.column)} = %s")
            built = compiled.updates[names] = (sql, chosen)
        sql, chosen = built
        params = [field.get_db_prep_save(field.pre_save(instance, False), db) for field in chosen]
        params.append(self.model._meta.pk.get_db_prep_value(instance.pk, db))
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                raise DatabaseError(f"{self.model.__name__} {instance.pk} was not updated.")

    @property
    def insert_fields(self) -> list[Field]:
        """The fields an ``INSERT`` writes, in the order of ``prepared``'s values (all concrete
        fields but a key the database generates)."""
        return self._compiled_for(_db()).insert_fields

    def prepared(self, instances: Sequence[M]) -> list[list[Any]]:
        """Each instance's values of ``insert_fields`` as an ``INSERT`` sends them (the
        fields' ``pre_save`` run), for statements that insert rows some other way."""
        return self._prepared(instances, _db())

    def _prepared(self, instances: Sequence[M], db: BaseDatabaseWrapper) -> list[list[Any]]:
        fields = self._compiled_for(db).insert_fields
        return [[field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]
                for instance in instances]

    def insert(self, instance: M) -> M:
        """``instance.save()`` of a new row without the ORM's compiling (and without
        signals); a database-generated primary key is read back into the instance."""
        self.insert_many([instance])
        return instance

    def insert_many(self, instances: Sequence[M]) -> list[M]:
        """``bulk_create(instances)``: one ``INSERT`` for as many rows as the backend takes
        at once, the fields' ``pre_save`` run, database-generated keys read back."""
        db = _db()
        compiled = self._compiled_for(db)
        pk = self.model._meta.pk
        fields = compiled.insert_fields
        returning = pk.db_returning and db.features.can_return_rows_from_bulk_insert
        size = max(1, db.ops.bulk_batch_size(fields, instances) or len(instances))
        if pk.db_returning and not returning:
            size = 1  # the key is read back per row (last_insert_id)
        rows = self._prepared(instances, db)
        head, tail = compiled.insert_sql
        one = "(" + ", ".join("%s" for _ in fields) + ")"
        with db.cursor() as cursor:
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                sql = f"{head}{', '.join(one for _ in chunk)}{tail if returning else ''}"
                cursor.execute(sql, [value for row in chunk for value in row])
                if not pk.db_returning:
                    continue
                if returning:
                    keys = [row[0] for row in cursor.fetchall()]
                else:
                    keys = [db.ops.last_insert_id(cursor, self.model._meta.db_table, pk.column)]
                for instance, key in zip(instances[start : start + size], keys, strict=True):
                    setattr(instance, pk.attname, key)
        for instance in instances:
            _mark_saved(instance, db)
        return list(instances)

    def stored(self, instance: M, key: Any) -> M:
        """``instance`` as saved, with ``key`` its primary key: for rows inserted by a
        statement of the caller's own (see ``prepared``)."""
        setattr(instance, self.model._meta.pk.attname, key)
        _mark_saved(instance, _db())
        return instance


def _mark_saved(instance: Model, db: BaseDatabaseWrapper) -> None:
    """What ``save()`` leaves on an instance: no longer adding, and from ``db``."""
    instance._state.adding = False
    instance._state.db = db.alias


def fetchone(sql: str, params: Sequence[Any]) -> tuple | None:
    """The first row of ``sql`` run with ``params`` on the default database, or None."""
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetchall(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Every row of ``sql`` run with ``params`` on the default database."""
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_statements: dict[tuple[str, str], str] = {}


def statement(name: str, build: Callable[[], str]) -> str:
    """The SQL ``build()`` returns, built once per database backend and kept under ``name``
    (a module-qualified name, unique in the project)."""
    key = (name, _db().vendor)
    sql = _statements.get(key)
    if sql is None:
        sql = _statements[key] = build()
    return sql


def lock_clause(*aliases: str) -> str:
    """``FOR NO KEY UPDATE OF <aliases>`` where the database locks rows (PostgreSQL), else
    nothing (SQLite, whose writers take the whole database), as ``select_for_update(no_key=True,
    of=...)`` would choose."""
    db = _db()
    features = db.features
    if not features.has_select_for_update:
        return ""
    of = aliases if features.has_select_for_update_of else ()
    return db.ops.for_update_sql(of=of, no_key=features.has_select_for_no_key_update)
