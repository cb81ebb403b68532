"""Demo stations for ``manage.py seed_demo``."""

from __future__ import annotations

from collections.abc import Iterable

from catalog.models import Category
from kds import services
from kds.models import Station, StationCategory, StationKind
from tenants.models import Outlet

# Category names (English and Indonesian) that the demo sends to the bar.
DRINK_WORDS = ("drink", "beverage", "bar", "coffee", "tea", "juice", "minuman", "kopi", "jus")

KITCHEN, BAR, EXPO = "Kitchen", "Bar", "Expo"


def is_drinks_category(category: Category) -> bool:
    name = category.name.lower()
    return any(word in name for word in DRINK_WORDS)


def seed_stations(outlet: Outlet, categories: Iterable[Category]) -> dict[str, Station]:
    """Give ``outlet`` a default prep "Kitchen", a prep "Bar" cooking the drinks categories
    among ``categories`` (their subcategories follow by the nearest-ancestor rule) and an
    "Expo" station. Idempotent: a station that already exists (by name) is left as it is, so
    running it again never undoes changes made since. Returns the three stations by name.
    """
    existing = {s.name: s for s in Station.objects.filter(outlet=outlet)}
    if KITCHEN not in existing:
        has_default = Station.objects.filter(outlet=outlet, is_default=True).exists()
        existing[KITCHEN] = services.station_create(
            outlet=outlet, name=KITCHEN, kind=StationKind.PREP, is_default=not has_default
        )
    if BAR not in existing:
        routed = set(
            StationCategory.objects.filter(outlet=outlet).values_list("category_id", flat=True)
        )
        candidates = [
            c for c in categories
            if c.tenant_id == outlet.tenant_id and is_drinks_category(c) and c.pk not in routed
        ]
        # List only the top of each drinks subtree: "Coffee" under "Drinks" follows it by the
        # nearest-ancestor rule, and a cook moving "Coffee" elsewhere later just lists it.
        top = {c.pk for c in candidates}
        drinks = [c.pk for c in candidates if c.parent_id not in top]
        existing[BAR] = services.station_create(
            outlet=outlet, name=BAR, kind=StationKind.PREP, category_ids=drinks
        )
    if EXPO not in existing:
        existing[EXPO] = services.station_create(outlet=outlet, name=EXPO, kind=StationKind.EXPO)
    return {name: existing[name] for name in (KITCHEN, BAR, EXPO)}
