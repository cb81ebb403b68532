"""order_set_payment_totals: the payment status rules, version, order.updated."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order
from orders.services import order_set_payment_totals, payment_status_for
from pos.api_errors import DomainValidationError
from tests.orders.conftest import events, item, make_order

D = Decimal


@pytest.mark.parametrize(
    ("paid", "refunded", "expected"),
    [
        ("0.00", "0.00", "unpaid"),
        ("50.00", "0.00", "partially_paid"),
        ("99.99", "0.00", "partially_paid"),
        ("100.00", "0.00", "paid"),
        ("120.00", "0.00", "paid"),
        ("100.00", "30.00", "partially_refunded"),
        ("100.00", "100.00", "refunded"),
        ("40.00", "40.00", "refunded"),
    ],
)
def test_payment_status_rules(paid, refunded, expected):
    assert payment_status_for(total=D("100.00"), paid=D(paid), refunded=D(refunded)) == expected


@pytest.mark.django_db
def test_setting_totals_bumps_version_and_emits_order_updated(world, menu):
    order = make_order(world.outlet, [item(menu.tea)])  # total 8000 + 5 % + 11 % = 9324.00
    assert order.total == D("9324.00")

    partly = order_set_payment_totals(order_id=order.id, paid_amount=D("5000"),
                                      refunded_amount=D("0"))
    assert (partly.payment_status, partly.paid_amount, partly.version) == (
        "partially_paid", D("5000.00"), 2
    )
    paid = order_set_payment_totals(order_id=order.id, paid_amount=D("9324.00"),
                                    refunded_amount=D("0"))
    assert (paid.payment_status, paid.version) == ("paid", 3)

    updates = events(world.outlet, "order.updated")
    assert [e.data["payment_status"] for e in updates] == ["partially_paid", "paid"]
    assert updates[-1].data["paid_amount"] == "9324.00"
    assert updates[-1].data["version"] == 3
    assert updates[-1].order_id == order.id


@pytest.mark.django_db
def test_same_amounts_again_change_nothing(world, menu):
    order = make_order(world.outlet, [item(menu.tea)])
    order_set_payment_totals(order_id=order.id, paid_amount=D("10"), refunded_amount=D("0"))
    count = len(events(world.outlet))
    again = order_set_payment_totals(order_id=order.id, paid_amount=D("10.00"),
                                     refunded_amount=D("0.00"))
    assert again.version == 2
    assert len(events(world.outlet)) == count


@pytest.mark.django_db
@pytest.mark.parametrize(("paid", "refunded"), [("-1", "0"), ("10", "11"), ("10", "-1")])
def test_impossible_amounts_are_refused(world, menu, paid, refunded):
    order = make_order(world.outlet, [item(menu.tea)])
    with pytest.raises(DomainValidationError):
        order_set_payment_totals(order_id=order.id, paid_amount=D(paid),
                                 refunded_amount=D(refunded))
    row = Order.objects.get(pk=order.pk)
    assert (row.paid_amount, row.refunded_amount, row.version) == (D("0"), D("0"), 1)
    assert len(events(world.outlet, "order.updated")) == 0
