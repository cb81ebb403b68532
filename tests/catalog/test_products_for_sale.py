"""``products_for_sale``: one query giving what ``prefetch_related("modifier_groups__options")``
gives, for the tenant's products only."""

from __future__ import annotations

import uuid

import pytest

from catalog.models import ModifierOption, Product
from catalog.selectors import products_for_sale
from tests import factories
from tests.orders.test_order_service_renders import fields

pytestmark = pytest.mark.django_db


def shape(product: Product) -> tuple:
    """Every column of the product, its groups in order, and their options in order."""
    return (
        fields(product),
        [(fields(group), [fields(option) for option in group.options.all()])
         for group in product.modifier_groups.all()],
    )


def test_products_with_their_groups_and_options_as_the_orm_prefetches_them(
    world, django_assert_num_queries
):
    t = world.tenant
    # Names whose order depends on the database's collation (case), a group with no options,
    # options out of creation order, and a group shared by two products.
    sizes = factories.make_modifier_group(t, name="size", options=(("Small", "0.00"),
                                                                   ("Large", "5000.50")))
    extras = factories.make_modifier_group(t, name="Extras", options=(("egg", "3000.00"),
                                                                      ("Bacon", "6000.00")))
    ModifierOption.objects.filter(group=extras, name="Bacon").update(sort_order=-1)
    empty = factories.make_modifier_group(t, name="empty", options=())
    burger = factories.make_product(t, name="Burger")
    burger.modifier_groups.set([sizes, extras, empty])
    tea = factories.make_product(t, name="Tea", track_stock=True, stock_quantity=3)
    soup = factories.make_product(t, name="Soup")
    soup.modifier_groups.set([sizes])
    foreign = factories.make_product(world.other_tenant, name="Not ours")
    foreign.modifier_groups.set([factories.make_modifier_group(world.other_tenant)])

    ids = [burger.pk, tea.pk, soup.pk, foreign.pk, uuid.uuid4()]
    with django_assert_num_queries(1):
        got = products_for_sale(t.pk, ids)
        shapes = {pk: shape(product) for pk, product in got.items()}

    expected = Product.objects.filter(tenant=t, pk__in=ids).prefetch_related(
        "modifier_groups__options")
    assert shapes == {product.pk: shape(product) for product in expected}
    assert set(got) == {burger.pk, tea.pk, soup.pk}
    assert [g.name for g in got[burger.pk].modifier_groups.all()] == [
        g.name for g in Product.objects.get(pk=burger.pk).modifier_groups.order_by("name")]


def test_no_ids_no_query(world, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert products_for_sale(world.tenant.pk, []) == {}
