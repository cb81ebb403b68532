"""Reads of the menu, scoped to the caller's tenant (a platform admin sees every tenant).

The catalog is tenant-wide: every member of a tenant, whatever its outlets, reads the whole
menu. Another tenant's row is absent from these querysets, so a lookup answers 404.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from catalog.models import Category, ModifierGroup, ModifierOption, Product
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
