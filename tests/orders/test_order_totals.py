"""Money: half-up rounding at each step, tax on the rounded service charge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.pricing import item_total, order_totals, round_money
from tests import factories
from tests.orders.conftest import item, order_body

D = Decimal


@pytest.mark.parametrize(
    ("raw", "rounded"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.025", "0.03"),  # half-even would say 0.02
        ("1.0449", "1.04"),
        ("2.675", "2.68"),
        ("1.265", "1.27"),  # half-even would say 1.26
    ],
)
def test_round_money_is_half_up(raw, rounded):
    assert round_money(D(raw)) == D(rounded)


def test_item_total_adds_option_deltas_before_multiplying():
    assert item_total(D("25000.00"), [D("5000.00"), D("4000.00")], 2) == D("68000.00")
    assert item_total(D("3.35"), [], 3) == D("10.05")


def test_each_step_rounds_half_up_and_tax_uses_the_rounded_service_charge():
    # service: 10.45 x 0.10 = 1.045 -> 1.05 (half-even: 1.04)
    # tax: (10.45 + 1.05) x 0.11 = 1.265 -> 1.27 (half-even: 1.26; on the unrounded service
    # charge, 11.495 x 0.11 = 1.26445 -> 1.26)
    totals = order_totals(
        item_totals=[D("10.45")], service_charge_rate=D("0.1000"), tax_rate=D("0.1100")
    )
    assert totals.subtotal == D("10.45")
    assert totals.service_charge_amount == D("1.05")
    assert totals.tax_amount == D("1.27")
    assert totals.total == D("12.77")


def test_discount_is_taken_before_tax():
    totals = order_totals(
        item_totals=[D("60.00"), D("40.00")],
        service_charge_rate=D("0.10"),
        tax_rate=D("0.11"),
        discount=D("5.00"),
    )
    # service 10.00; tax (100 + 10 - 5) x 0.11 = 11.55; total 100 + 10 + 11.55 - 5
    assert (totals.service_charge_amount, totals.tax_amount, totals.total) == (
        D("10.00"), D("11.55"), D("116.55")
    )


@pytest.mark.django_db
def test_api_totals_use_the_outlets_rates_and_half_up(world, client_for):
    outlet = factories.make_outlet(
        world.tenant, service_charge_rate=D("0.1000"), tax_rate=D("0.1100")
    )
    world.manager.outlets.add(outlet)
    product = factories.make_product(world.tenant, price=D("10.45"))
    response = client_for(world.manager).post(
        "/api/orders/", order_body(outlet, [item(product)]), format="json"
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (
        data["subtotal"], data["service_charge_amount"], data["tax_amount"], data["total"]
    ) == ("10.45", "1.05", "1.27", "12.77")


@pytest.mark.django_db
def test_zero_rates_give_total_equal_subtotal(world, client_for):
    outlet = factories.make_outlet(world.tenant, service_charge_rate=D("0"), tax_rate=D("0"))
    product = factories.make_product(world.tenant, price=D("19.99"))
    data = client_for(world.owner).post(
        "/api/orders/", order_body(outlet, [item(product, 3)]), format="json"
    ).json()
    assert (data["subtotal"], data["service_charge_amount"], data["tax_amount"], data["total"]) == (
        "59.97", "0.00", "0.00", "59.97"
    )
