"""Reads of the menu, scoped to the caller's tenant (a platform admin sees every tenant).

The catalog is tenant-wide: every member of a tenant, whatever its outlets, reads the whole
menu. Another tenant's row is absent from these querysets, so a lookup answers 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Prefetch, QuerySet

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from pos.prefetch import set_prefetched
from pos.rows import Table, fetchall, statement
from tenants.models import Outlet, User
from tenants.selectors import user_is_super_admin


def _scoped(user: User, qs: QuerySet) -> QuerySet:
    if user_is_super_admin(user):
        return qs
    if not user.is_authenticated or user.tenant_id is None:
        return qs.none()
    return qs.filter(tenant_id=user.tenant_id)


def categories_visible_to(user: User) -> QuerySet[Category]:
    return _scoped(user, Category.objects.all())


def products_visible_to(user: User) -> QuerySet[Product]:
    # The serializer renders modifier group ids: one prefetch instead of a query per product.
    return _scoped(user, Product.objects.prefetch_related("modifier_groups"))


def _modifier_groups() -> QuerySet[ModifierGroup]:
    return ModifierGroup.objects.prefetch_related(
        Prefetch("options", queryset=ModifierOption.objects.order_by("sort_order", "name"))
    )


def modifier_groups_visible_to(user: User) -> QuerySet[ModifierGroup]:
    return _scoped(user, _modifier_groups())


def product_with_relations(product_id) -> Product:
    """One product with what its serializer needs, unscoped: for services that already hold
    the product (the caller was authorised to touch it)."""
    return Product.objects.prefetch_related("modifier_groups").get(pk=product_id)


def modifier_group_with_options(group_id) -> ModifierGroup:
    """One group with its options, unscoped: for services that already hold the group."""
    return _modifier_groups().get(pk=group_id)


def outlets_of_tenant(tenant_id) -> QuerySet[Outlet]:
    """Every outlet of a tenant, in a stable order: where tenant-wide catalog events go."""
    return Outlet.objects.filter(tenant_id=tenant_id).order_by("created_at", "id")


_PRODUCT_ROWS = Table(Product, "p")
_GROUP_ROWS = Table(ModifierGroup, "g")
_OPTION_ROWS = Table(ModifierOption, "m")
_GROUP_ORDER = ("name", "id")
_OPTION_ORDER = ("sort_order", "name", "id")


def products_for_sale(tenant_id: uuid.UUID, product_ids: Iterable[uuid.UUID]
                      ) -> dict[uuid.UUID, Product]:
    """The tenant's products among ``product_ids`` by id, each with its modifier groups (by
    name) and their options (by sort order and name) prefetched, as
    ``prefetch_related("modifier_groups__options")`` gives them: one query instead of three,
    built once (``pos.rows``), since every sale reads them."""
    ids = list(product_ids)
    if not ids:
        return {}
    p, g, m = _PRODUCT_ROWS, _GROUP_ROWS, _OPTION_ROWS
    link = Product._meta.get_field("modifier_groups")
    head = statement("catalog.products_for_sale", lambda: (
        f"SELECT {p.columns}, {g.columns}, {m.columns} FROM {p.table} "  # noqa: S608
        f"LEFT OUTER JOIN {connection.ops.quote_name(link.m2m_db_table())} pg "
        f"ON pg.{connection.ops.quote_name(link.m2m_column_name())} = {p.column('id')} "
        f"LEFT OUTER JOIN {g.table} "
        f"ON {g.column('id')} = pg.{connection.ops.quote_name(link.m2m_reverse_name())} "
        f"LEFT OUTER JOIN {m.table} ON {m.column('group')} = {g.column('id')} "
        f"WHERE {p.column('tenant')} = %s AND {p.column('id')} IN "
    ))
    order = statement("catalog.products_for_sale.order", lambda: " ORDER BY " + ", ".join(
        [p.column("id"), *(g.column(f) for f in _GROUP_ORDER),
         *(m.column(f) for f in _OPTION_ORDER)]
    ))
    sql = f"{head}({', '.join('%s' for _ in ids)}){order}"
    rows = fetchall(sql, [p.param("tenant", tenant_id), *(p.param("id", pk) for pk in ids)])
    # One row per product, group and option: each built once, keyed by its row's raw id.
    products: dict[Any, Product] = {}
    groups: dict[Any, dict[Any, ModifierGroup]] = {}
    options: dict[tuple[Any, Any], list[ModifierOption]] = {}
    for row in rows:
        key = row[p.key_index]
        if key not in products:
            products[key], groups[key] = p.instance(row), {}
        group_key = row[p.width + g.key_index]
        if group_key is None:
            continue  # a product without modifier groups
        if group_key not in groups[key]:
            groups[key][group_key] = g.instance(row, p.width)
            options[key, group_key] = []
        if row[p.width + g.width + m.key_index] is not None:
            options[key, group_key].append(m.instance(row, p.width + g.width))
    for key, product in products.items():
        for group_key, group in groups[key].items():
            set_prefetched(group, "options", options[key, group_key], ordering=_OPTION_ORDER,
                           presorted=True)
        set_prefetched(product, "modifier_groups", groups[key].values(), ordering=_GROUP_ORDER,
                       presorted=True)
    return {product.pk: product for product in products.values()}
