"""REST endpoints of the menu. Managers and up write; every member of the tenant reads."""

from __future__ import annotations

import django_filters
from rest_framework import viewsets

from catalog import services
from catalog.models import Category, ModifierGroup, Product
from catalog.selectors import (
    categories_visible_to,
    modifier_groups_visible_to,
    products_visible_to,
)
from catalog.serializers import (
    CategorySerializer,
    ModifierGroupSerializer,
    ProductSerializer,
)
from pos.permissions import ALL_ROLES, MANAGEMENT_ROLES, RolePermission
from tenants.selectors import tenant_for_write

CATALOG_ROLES = {
    "list": ALL_ROLES,
    "retrieve": ALL_ROLES,
    "create": MANAGEMENT_ROLES,
    "update": MANAGEMENT_ROLES,
    "partial_update": MANAGEMENT_ROLES,
    "destroy": MANAGEMENT_ROLES,
}


class CategoryFilter(django_filters.FilterSet):
    parent = django_filters.UUIDFilter(field_name="parent_id")
    is_root = django_filters.BooleanFilter(
        field_name="parent", lookup_expr="isnull", label="Only top-level categories"
    )
    tenant = django_filters.UUIDFilter(field_name="tenant_id")

    class Meta:
        model = Category
        fields = ("parent", "is_root", "tenant")


class ProductFilter(django_filters.FilterSet):
    category = django_filters.UUIDFilter(field_name="category_id")
    tenant = django_filters.UUIDFilter(field_name="tenant_id")

    class Meta:
        model = Product
        fields = ("category", "is_available", "track_stock", "tenant")


class ModifierGroupFilter(django_filters.FilterSet):
    tenant = django_filters.UUIDFilter(field_name="tenant_id")

    class Meta:
        model = ModifierGroup
        fields = ("tenant",)


class _CatalogViewSet(viewsets.ModelViewSet):
    """Shared shape: role gate, tenant forced on create (a platform admin names it)."""

    permission_classes = [RolePermission]
    allowed_roles = CATALOG_ROLES

    def tenant_for_create(self, data: dict):
        return tenant_for_write(self.request.user, data.pop("tenant", None))


class CategoryViewSet(_CatalogViewSet):
    """The category tree, flat: each category names its ``parent`` (null at the top).
    Filters: ``parent``, ``is_root``, ``tenant`` (platform admins)."""

    serializer_class = CategorySerializer
    filterset_class = CategoryFilter
    search_fields = ("name",)
    ordering_fields = ("sort_order", "name")

    def get_queryset(self):
        return categories_visible_to(self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.category_create(tenant=self.tenant_for_create(data), **data)

    def perform_update(self, serializer):
        serializer.instance = services.category_update(
            category=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.category_delete(category=instance)


class ProductViewSet(_CatalogViewSet):
    """Products. Filters: ``category``, ``is_available``, ``track_stock``, ``tenant``;
    ``search`` matches name and SKU. Changing ``is_available`` emits
    ``product.availability_changed`` on every outlet of the tenant."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ("name", "sku")
    ordering_fields = ("name", "sku", "price", "stock_quantity", "created_at")

    def get_queryset(self):
        return products_visible_to(self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.product_create(tenant=self.tenant_for_create(data), **data)

    def perform_update(self, serializer):
        serializer.instance = services.product_update(
            product=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.product_delete(product=instance)


class ModifierGroupViewSet(_CatalogViewSet):
    """Modifier groups with their options, written together: on update, ``options`` replaces
    the list (send an option's ``id`` to keep it)."""

    serializer_class = ModifierGroupSerializer
    filterset_class = ModifierGroupFilter
    search_fields = ("name",)
    ordering_fields = ("name",)

    def get_queryset(self):
        return modifier_groups_visible_to(self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.modifier_group_create(
            tenant=self.tenant_for_create(data), **data
        )

    def perform_update(self, serializer):
        serializer.instance = services.modifier_group_update(
            group=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.modifier_group_delete(group=instance)
