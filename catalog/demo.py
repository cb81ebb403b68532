"""Demo menu for ``manage.py seed_demo``: an Indonesian warung, prices in rupiah.

Idempotent: categories are found by (parent, name), modifier groups by name, options by
(group, name), products by SKU; only missing rows are created, so a second run creates nothing
and leaves later edits (prices, availability) alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from tenants.models import Tenant

# (name, parent name or None, sort order)
CATEGORIES = (
    ("Food", None, 1),
    ("Rice", "Food", 1),
    ("Noodles", "Food", 2),
    ("Drinks", None, 2),
    ("Coffee", "Drinks", 1),
    ("Tea", "Drinks", 2),
    ("Desserts", None, 3),
)

# name -> (min_select, max_select, [(option, price delta)])
MODIFIER_GROUPS = {
    "Spice level": (1, 1, [("Not spicy", "0"), ("Medium", "0"), ("Hot", "0"),
                           ("Extra hot", "2000")]),
    "Extras": (0, 3, [("Fried egg", "5000"), ("Prawn crackers", "3000"), ("Cheese", "6000"),
                      ("Shredded chicken", "8000")]),
    "Coffee add-ons": (0, 2, [("Extra shot", "8000"), ("Oat milk", "7000"),
                              ("Less sugar", "0")]),
}

# (sku, name, category, price, stock quantity or None, modifier groups)
PRODUCTS = (
    ("RICE-01", "Nasi Goreng Spesial", "Rice", "35000", None, ("Spice level", "Extras")),
    ("RICE-02", "Nasi Ayam Bakar", "Rice", "42000", None, ("Spice level",)),
    ("RICE-03", "Nasi Uduk Komplit", "Rice", "28000", 30, ("Extras",)),
    ("NOOD-01", "Mie Goreng Jawa", "Noodles", "32000", None, ("Spice level", "Extras")),
    ("NOOD-02", "Mie Ayam Bakso", "Noodles", "30000", None, ("Extras",)),
    ("NOOD-03", "Kwetiau Siram Seafood", "Noodles", "38000", None, ("Spice level",)),
    ("COF-01", "Kopi Tubruk", "Coffee", "12000", None, ()),
    ("COF-02", "Es Kopi Susu Gula Aren", "Coffee", "22000", None, ("Coffee add-ons",)),
    ("COF-03", "Cappuccino", "Coffee", "28000", None, ("Coffee add-ons",)),
    ("TEA-01", "Es Teh Manis", "Tea", "8000", None, ()),
    ("TEA-02", "Teh Tarik", "Tea", "15000", None, ()),
    ("DES-01", "Es Campur", "Desserts", "20000", 20, ()),
    ("DES-02", "Pisang Goreng Keju", "Desserts", "18000", 25, ()),
    ("DES-03", "Klepon", "Desserts", "15000", 40, ()),
)


@dataclass
class DemoMenu:
    categories: dict[str, Category] = field(default_factory=dict)
    groups: dict[str, ModifierGroup] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    created: int = 0


@transaction.atomic
def seed_menu(tenant: Tenant) -> DemoMenu:
    """The demo menu of ``tenant``: the category tree, modifier groups and ~14 products."""
    menu = DemoMenu()
    for name, parent_name, sort_order in CATEGORIES:
        parent = menu.categories[parent_name] if parent_name else None
        category, new = Category.objects.get_or_create(
            tenant=tenant, parent=parent, name=name, defaults={"sort_order": sort_order}
        )
        menu.categories[name] = category
        menu.created += new
    for name, (low, high, options) in MODIFIER_GROUPS.items():
        group, new = ModifierGroup.objects.get_or_create(
            tenant=tenant, name=name, defaults={"min_select": low, "max_select": high}
        )
        menu.created += new
        for position, (option_name, delta) in enumerate(options):
            _, new = ModifierOption.objects.get_or_create(
                group=group,
                name=option_name,
                defaults={"tenant": tenant, "price_delta": Decimal(delta),
                          "sort_order": position},
            )
            menu.created += new
        menu.groups[name] = group
    for sku, name, category_name, price, stock, group_names in PRODUCTS:
        product, new = Product.objects.get_or_create(
            tenant=tenant,
            sku=sku,
            defaults={
                "name": name,
                "category": menu.categories[category_name],
                "price": Decimal(price),
                "track_stock": stock is not None,
                "stock_quantity": stock or 0,
            },
        )
        if new:
            product.modifier_groups.set([menu.groups[g] for g in group_names])
            menu.created += 1
        menu.products[sku] = product
    return menu
