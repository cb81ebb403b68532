"""Give an instance its related rows as if ``prefetch_related`` had read them.

A service that has just inserted an object and its children (an order and its items, a
ticket and its items) holds every row as it was stored; reading them back only to render
them costs queries on every write. ``set_prefetched`` stores the rows where Django's own
prefetch stores them, so serializers and ``instance.<name>.all()`` answer without a query.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models


def set_prefetched(
    instance: models.Model, name: str, rows: Iterable[models.Model], *, ordering: tuple[str, ...],
    presorted: bool = False,
) -> None:
    """Make ``instance.<name>.all()`` return ``rows`` (sorted by ``ordering``, the related
    model's default ordering or one that refines it, as the prefetch they stand for would
    order them) without a query. ``presorted``: ``rows`` come from a query ordered by
    ``ordering`` and keep that order (the database's collation, which Python's string order
    is not). Chained onto (``instance.<name>.filter(...)``), the queryset reads the database
    with the related model's default ordering, as a prefetched one does.

    Precondition: ``rows`` are all of the instance's related rows, saved, each holding what its
    row holds (no database default, trigger or rounding changed a column after the insert);
    tests compare what is rendered from them with a fresh read.
    """
    ordered = list(rows) if presorted else sorted(
        rows, key=lambda row: tuple(getattr(row, field) for field in ordering)
    )
    cache = getattr(instance, "_prefetched_objects_cache", None)
    if cache is None:
        cache = instance._prefetched_objects_cache = {}
    cache.pop(name, None)  # else the manager would hand back the rows stored before
    # What Django's prefetch_related_objects stores for a plain lookup: the related manager's
    # queryset, evaluated (its result cache holds the rows), under the related name. Its
    # filter on the instance stays deferred, as the manager leaves it, until someone chains
    # onto it; building it (and an order_by() would) took a quarter of a millisecond a call.
    queryset = getattr(instance, name).get_queryset()
    queryset._result_cache = ordered
    queryset._prefetch_done = True
    cache[name] = queryset
