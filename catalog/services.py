"""Every write of the menu: categories, products (with availability events), modifier groups.

Related rows handed in (parent, category, modifier groups) may come from any tenant when a
platform admin acts, so each service checks they belong to the row's tenant (400 otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from catalog.selectors import (
    modifier_group_with_options,
    outlets_of_tenant,
    product_with_relations,
)
from catalog.serializers import ProductSerializer
from pos.api_errors import DomainValidationError
from pos.integrity import delete_or_conflict, refuse_taken, save_unique
from pos.streams import outbox
from pos.streams.outbox import emit
from tenants.models import Tenant

PRODUCT_AVAILABILITY_CHANGED = "product.availability_changed"


def _same_tenant(tenant_id, field: str, rows: Iterable[Any]) -> None:
    if any(row is not None and row.tenant_id != tenant_id for row in rows):
        raise DomainValidationError(details={field: ["Must belong to the same tenant."]})


# --- Categories ------------------------------------------------------------------------------


def _check_category_name(tenant_id, parent_id, name: str, exclude_pk=None) -> None:
    refuse_taken(
        Category.objects.filter(tenant_id=tenant_id, parent_id=parent_id, name=name),
        field="name", message="A category with this name exists under the same parent.",
        exclude_pk=exclude_pk,
    )


@transaction.atomic
def category_create(
    *, tenant: Tenant, name: str, parent: Category | None = None, sort_order: int = 0
) -> Category:
    _same_tenant(tenant.pk, "parent", [parent])
    _check_category_name(tenant.pk, parent.pk if parent else None, name)
    category = Category(tenant=tenant, name=name, parent=parent, sort_order=sort_order)
    save_unique(category, field="name", message="A category with this name exists.")
    return category


@transaction.atomic
def category_update(*, category: Category, data: Mapping[str, Any]) -> Category:
    """Change name, parent or order. A parent that is the category itself or one of its
    descendants would make a cycle: 400 on ``parent``."""
    parent = data.get("parent", category.parent)
    if "parent" in data and parent is not None:
        _same_tenant(category.tenant_id, "parent", [parent])
        # Walk up from the new parent; meeting this category means a cycle. The tenant's
        # categories are locked first so two concurrent moves cannot build a cycle together.
        list(Category.objects.select_for_update(no_key=True).filter(tenant_id=category.tenant_id)
             .values_list("pk", flat=True))
        parents = dict(
            Category.objects.filter(tenant_id=category.tenant_id).values_list("pk", "parent_id")
        )
        node, seen = parent.pk, set()
        while node is not None and node not in seen:
            if node == category.pk:
                raise DomainValidationError(
                    details={"parent": ["A category cannot be placed under itself."]}
                )
            seen.add(node)
            node = parents.get(node)
    name = data.get("name", category.name)
    _check_category_name(
        category.tenant_id, parent.pk if parent else None, name, exclude_pk=category.pk
    )
    category.name, category.parent = name, parent
    if "sort_order" in data:
        category.sort_order = data["sort_order"]
    save_unique(category, field="name", message="A category with this name exists.")
    return category


@transaction.atomic
def category_delete(*, category: Category) -> None:
    delete_or_conflict(
        category, "This category still has subcategories or products; move or delete them first."
    )


# --- Products --------------------------------------------------------------------------------

_SKU_TAKEN = "A product with this SKU exists in the tenant."


def _check_sku(tenant_id, sku: str, exclude_pk=None) -> None:
    refuse_taken(Product.objects.filter(tenant_id=tenant_id, sku=sku),
                 field="sku", message=_SKU_TAKEN, exclude_pk=exclude_pk)


def _emit_availability(product: Product) -> None:
    """One ``product.availability_changed`` per outlet of the tenant: the menu is
    tenant-wide, and every kitchen and till must stop (or resume) selling it.
    Precondition: ``product`` was read with ``product_with_relations`` after the change."""
    data = ProductSerializer(product).data
    for outlet in outlets_of_tenant(product.tenant_id):
        emit(outlet=outlet, name=PRODUCT_AVAILABILITY_CHANGED, data=data)


@outbox.atomic
def product_create(
    *,
    tenant: Tenant,
    name: str,
    sku: str,
    price: Decimal,
    category: Category | None = None,
    track_stock: bool = False,
    stock_quantity: int = 0,
    is_available: bool = True,
    modifier_groups: Iterable[ModifierGroup] = (),
) -> Product:
    groups = list(modifier_groups)
    _same_tenant(tenant.pk, "category", [category])
    _same_tenant(tenant.pk, "modifier_groups", groups)
    _check_sku(tenant.pk, sku)
    product = Product(
        tenant=tenant,
        category=category,
        name=name,
        sku=sku,
        price=price,
        track_stock=track_stock,
        stock_quantity=stock_quantity,
        is_available=is_available,
    )
    save_unique(product, field="sku", message=_SKU_TAKEN)
    product.modifier_groups.set(groups)
    return product_with_relations(product.pk)


_PRODUCT_FIELDS = (
    "category",
    "name",
    "sku",
    "price",
    "track_stock",
    "stock_quantity",
    "is_available",
)


@outbox.atomic
def product_update(*, product: Product, data: Mapping[str, Any]) -> Product:
    """Change a product. If ``is_available`` flips, every outlet of the tenant gets a
    ``product.availability_changed`` event in this transaction. The row is locked so the
    before/after comparison holds against concurrent writers (stock moves included)."""
    locked = Product.objects.select_for_update(no_key=True).get(pk=product.pk)
    if "category" in data:
        _same_tenant(locked.tenant_id, "category", [data["category"]])
    if "modifier_groups" in data:
        _same_tenant(locked.tenant_id, "modifier_groups", data["modifier_groups"])
    if "sku" in data:
        _check_sku(locked.tenant_id, data["sku"], exclude_pk=locked.pk)
    was_available = locked.is_available
    changed = [field for field in _PRODUCT_FIELDS if field in data]
    for field in changed:
        setattr(locked, field, data[field])
    if changed:
        save_unique(locked, field="sku", message=_SKU_TAKEN,
                     update_fields=[*changed, "updated_at"])
    if "modifier_groups" in data:
        locked.modifier_groups.set(list(data["modifier_groups"]))
    fresh = product_with_relations(locked.pk)
    if fresh.is_available != was_available:
        _emit_availability(fresh)
    return fresh


@outbox.atomic
def product_set_availability(*, product: Product, is_available: bool) -> Product:
    """Mark a product (un)available; emits the event only when the value changes.

    For other apps too (for example, stock running out). Call inside or outside a transaction.
    """
    return product_update(product=product, data={"is_available": is_available})


@transaction.atomic
def product_delete(*, product: Product) -> None:
    delete_or_conflict(product, "This product is still in use and cannot be deleted.")


# --- Modifier groups -------------------------------------------------------------------------

_GROUP_TAKEN = "A modifier group with this name exists in the tenant."


def _check_group_name(tenant_id, name: str, exclude_pk=None) -> None:
    refuse_taken(ModifierGroup.objects.filter(tenant_id=tenant_id, name=name),
                 field="name", message=_GROUP_TAKEN, exclude_pk=exclude_pk)


def _check_selection(min_select: int, max_select: int, option_count: int) -> None:
    if max_select < min_select:
        raise DomainValidationError(
            details={"max_select": ["Must be greater than or equal to min_select."]}
        )
    if min_select > option_count:
        raise DomainValidationError(
            details={"min_select": ["The group has fewer options than min_select requires."]}
        )


def _write_options(group: ModifierGroup, options: list[Mapping[str, Any]]) -> None:
    """Make the group's options exactly ``options``: keep those with a known ``id`` (updated),
    create those without one, delete the rest. Order in the list is the display order."""
    existing = {o.pk: o for o in ModifierOption.objects.filter(group=group)}
    unknown = [str(o["id"]) for o in options if o.get("id") and o["id"] not in existing]
    if unknown:
        raise DomainValidationError(
            details={"options": [f"Unknown option id for this group: {', '.join(unknown)}."]}
        )
    kept = {o["id"] for o in options if o.get("id")}
    ModifierOption.objects.filter(group=group).exclude(pk__in=kept).delete()
    # Names are unique per group: clear kept names first so swapping two names succeeds.
    for pk in kept:
        ModifierOption.objects.filter(pk=pk).update(name=f"~renaming~{pk}")
    for position, spec in enumerate(options):
        option = existing[spec["id"]] if spec.get("id") else ModifierOption(
            tenant_id=group.tenant_id, group=group
        )
        option.name = spec["name"]
        option.price_delta = spec.get("price_delta", option.price_delta or Decimal("0.00"))
        option.sort_order = position
        save_unique(option, field="options", message="Option names must be unique in a group.")


@transaction.atomic
def modifier_group_create(
    *,
    tenant: Tenant,
    name: str,
    min_select: int = 0,
    max_select: int = 1,
    options: Iterable[Mapping[str, Any]] = (),
) -> ModifierGroup:
    option_list = list(options)
    if any(o.get("id") for o in option_list):
        raise DomainValidationError(details={"options": ["New options cannot carry an id."]})
    _check_selection(min_select, max_select, len(option_list))
    _check_group_name(tenant.pk, name)
    group = ModifierGroup(tenant=tenant, name=name, min_select=min_select, max_select=max_select)
    save_unique(group, field="name", message=_GROUP_TAKEN)
    _write_options(group, option_list)
    return modifier_group_with_options(group.pk)


@transaction.atomic
def modifier_group_update(*, group: ModifierGroup, data: Mapping[str, Any]) -> ModifierGroup:
    """Change a group; ``options``, when given, replaces the option list (see
    ``_write_options``)."""
    locked = ModifierGroup.objects.select_for_update(no_key=True).get(pk=group.pk)
    if "name" in data:
        _check_group_name(locked.tenant_id, data["name"], exclude_pk=locked.pk)
    for field in ("name", "min_select", "max_select"):
        if field in data:
            setattr(locked, field, data[field])
    count = len(data["options"]) if "options" in data else locked.options.count()
    _check_selection(locked.min_select, locked.max_select, count)
    save_unique(locked, field="name", message=_GROUP_TAKEN)
    if "options" in data:
        _write_options(locked, list(data["options"]))
    return modifier_group_with_options(locked.pk)


@transaction.atomic
def modifier_group_delete(*, group: ModifierGroup) -> None:
    delete_or_conflict(group, "This modifier group is still in use and cannot be deleted.")
