"""Counter rows incremented under a row lock: the outlets' event cursors, the daily order
numbers. One statement per increment, the row created on first use."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, models, transaction

from pos.rows import fetchone, statement


def increment(model: type[models.Model], *, field: str, by: int = 1, **key: Any) -> int:
    """Add ``by`` to ``field`` of the ``model`` row whose fields equal ``key`` and return the
    new value; the row stays locked until commit, so numbers follow commit order without gaps.

    One ``UPDATE ... RETURNING`` (PostgreSQL, SQLite >= 3.35): Django's ``update()`` cannot
    return the new value, and this runs on every writing transaction. Without a row, it is
    created holding ``by``, in a savepoint: a racing creator's row is incremented instead.
    """
    meta = model._meta
    key_fields = [meta.get_field(name) for name in key]

    def build() -> str:  # names come from the model's meta; every value is a parameter
        quote = connection.ops.quote_name
        column = quote(meta.get_field(field).column)
        where = " AND ".join(f"{quote(f.column)} = %s" for f in key_fields)
        return (f"UPDATE {quote(meta.db_table)} SET {column} = {column} + %s "  # noqa: S608
                f"WHERE {where} RETURNING {column}")

    # Built once per counter: it runs on every writing transaction.
    sql = statement(f"counters.{meta.label}.{field}.{'.'.join(key)}", build)
    params = [by, *(f.get_db_prep_value(key[f.name], connection) for f in key_fields)]
    for _ in range(2):
        row = fetchone(sql, params)
        if row is not None:
            return row[0]
        try:
            with transaction.atomic():  # savepoint: a racing creator must not poison ours
                model.objects.create(**{f.attname: key[f.name] for f in key_fields}, **{field: by})
            return by
        except IntegrityError:
            continue  # another transaction created it first: increment theirs
    raise RuntimeError(f"could not increment {meta.label}.{field} for {key}")
