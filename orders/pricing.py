"""Order money: item totals, service charge, tax and total.

Pure functions over ``Decimal`` (no ORM), so the rounding rule lives in one place:

- item total = (unit price + sum of the chosen options' price deltas) x quantity; exact, since
  every input has 2 decimal places and the quantity is an integer;
- subtotal = sum of the item totals;
- service charge = subtotal x outlet service rate, rounded half-up to 2 places;
- tax = (subtotal + service charge - discount) x outlet tax rate, rounded half-up to 2 places,
  computed on the already rounded service charge;
- total = subtotal + service charge + tax - discount.

Half-up means a half cent goes away from zero: 0.005 -> 0.01, 0.015 -> 0.02, 0.025 -> 0.03
(never the "banker's" half-even that Python's ``round`` uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_money(value: Decimal) -> Decimal:
    """``value`` rounded half-up to 2 decimal places."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def item_total(unit_price: Decimal, price_deltas: Iterable[Decimal], quantity: int) -> Decimal:
    """Line total of one order item (unit price plus its options, times the quantity)."""
    return round_money((unit_price + sum(price_deltas, ZERO)) * quantity)


@dataclass(frozen=True)
class OrderTotals:
    subtotal: Decimal
    service_charge_amount: Decimal
    discount_amount: Decimal
    tax_amount: Decimal
    total: Decimal


def order_totals(
    *,
    item_totals: Iterable[Decimal],
    service_charge_rate: Decimal,
    tax_rate: Decimal,
    discount: Decimal = ZERO,
) -> OrderTotals:
    """The order's money from its item totals and the outlet's rates.

    Precondition: ``discount`` is not above subtotal + service charge (tax is never negative).
    """
    subtotal = round_money(sum(item_totals, ZERO))
    discount = round_money(discount)
    service = round_money(subtotal * service_charge_rate)
    tax = round_money((subtotal + service - discount) * tax_rate)
    return OrderTotals(
        subtotal=subtotal,
        service_charge_amount=service,
        discount_amount=discount,
        tax_amount=tax,
        total=subtotal + service + tax - discount,
    )
