"""``kds.demo.seed_stations``: the demo stations, idempotently."""

from __future__ import annotations

from kds.demo import seed_stations
from kds.models import Station, StationCategory
from tests import factories


def test_seed_stations_is_idempotent_and_routes_drinks_to_the_bar(world):
    food = factories.make_category(world.tenant, name="Mains")
    drinks = factories.make_category(world.tenant, name="Cold drinks")
    coffee = factories.make_category(world.tenant, name="Coffee")
    tea = factories.make_category(world.tenant, parent=drinks, name="Tea")
    stations = seed_stations(world.outlet, [food, drinks, coffee, tea])
    assert {name: (s.kind, s.is_default) for name, s in stations.items()} == {
        "Kitchen": ("prep", True),
        "Bar": ("prep", False),
        "Expo": ("expo", False),
    }
    routed = set(StationCategory.objects.filter(station=stations["Bar"])
                 .values_list("category_id", flat=True))
    assert routed == {drinks.pk, coffee.pk}  # Tea follows Drinks as its nearest ancestor

    again = seed_stations(world.outlet, [food, drinks, coffee, tea])
    assert {n: s.pk for n, s in again.items()} == {n: s.pk for n, s in stations.items()}
    assert Station.objects.filter(outlet=world.outlet).count() == 3
    assert StationCategory.objects.filter(outlet=world.outlet).count() == 2
