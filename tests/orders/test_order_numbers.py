"""Order numbers: short, per outlet and business day (the outlet's local day), never repeated."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from django.db import connection, transaction

from orders import services
from orders.models import Order, OrderNumberCounter
from orders.services import business_date_for, format_order_number
from pos import counters
from tenants.models import Outlet
from tests.orders.conftest import item, make_order


def test_format():
    assert format_order_number(1) == "A-0001"
    assert format_order_number(42) == "A-0042"
    assert format_order_number(123456) == "A-123456"
    assert len(format_order_number(10**13)) <= 16


@pytest.mark.django_db
def test_numbers_count_up_per_outlet(world, menu):
    first = make_order(world.outlet, [item(menu.tea)])
    second = make_order(world.outlet, [item(menu.tea)])
    other = make_order(world.outlet2, [item(menu.tea)])
    assert (first.number, second.number, other.number) == ("A-0001", "A-0002", "A-0001")


@pytest.mark.django_db
def test_number_past_9999_grows_a_digit(world, menu):
    order = make_order(world.outlet, [item(menu.tea)])
    OrderNumberCounter.objects.filter(outlet=world.outlet).update(last_number=9999)
    assert make_order(world.outlet, [item(menu.tea)]).number == "A-10000"
    assert order.number == "A-0001"


def test_business_date_is_the_outlets_local_day():
    jakarta = Outlet(timezone="Asia/Jakarta")
    utc = Outlet(timezone="UTC")
    moment = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 00:30 on 2 March in Jakarta
    assert business_date_for(jakarta, moment) == date(2026, 3, 2)
    assert business_date_for(utc, moment) == date(2026, 3, 1)
    assert business_date_for(Outlet(timezone="Not/AZone"), moment) == date(2026, 3, 1)


@pytest.mark.django_db
def test_numbering_restarts_at_local_midnight(world, menu, monkeypatch):
    world.outlet.timezone = "Asia/Jakarta"
    world.outlet.save()
    clock = {"now": datetime(2026, 3, 1, 16, 0, tzinfo=UTC)}  # 23:00 in Jakarta
    monkeypatch.setattr("orders.services.timezone.now", lambda: clock["now"])

    late = [make_order(world.outlet, [item(menu.tea)]) for _ in range(2)]
    clock["now"] = datetime(2026, 3, 1, 17, 5, tzinfo=UTC)  # 00:05 the next local day
    early = make_order(world.outlet, [item(menu.tea)])

    assert [(o.number, o.business_date) for o in late] == [
        ("A-0001", date(2026, 3, 1)), ("A-0002", date(2026, 3, 1))
    ]
    assert (early.number, early.business_date) == ("A-0001", date(2026, 3, 2))


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_get_distinct_numbers(world, menu):
    per_thread, threads_n = 5, 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def create_some():
        try:
            barrier.wait()
            for _ in range(per_thread):
                make_order(world.outlet, [item(menu.tea)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create_some) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    numbers = sorted(Order.objects.filter(outlet=world.outlet).values_list("number", flat=True))
    assert numbers == [format_order_number(n) for n in range(1, per_thread * threads_n + 1)]


@pytest.mark.django_db
def test_the_days_first_order_creates_its_counter_and_the_next_ones_follow_without_gaps(
    world, menu
):
    today = business_date_for(world.outlet)
    assert not OrderNumberCounter.objects.filter(outlet=world.outlet).exists()
    first = make_order(world.outlet, [item(menu.tea)])
    counter = OrderNumberCounter.objects.get(outlet=world.outlet)
    assert (counter.business_date, counter.last_number) == (today, 1)
    assert (first.number, first.business_date) == ("A-0001", today)

    numbers = [make_order(world.outlet, [item(menu.tea)]).number for _ in range(4)]
    assert numbers == ["A-0002", "A-0003", "A-0004", "A-0005"]
    assert OrderNumberCounter.objects.get(pk=counter.pk).last_number == 5
    assert OrderNumberCounter.objects.filter(outlet=world.outlet).count() == 1


@pytest.mark.django_db
def test_a_number_is_one_statement_once_the_counter_exists(world, django_assert_num_queries):
    day = date(2026, 3, 1)
    with django_assert_num_queries(4):  # no row: UPDATE, then the savepoint around INSERT
        assert services._next_order_number(world.outlet.pk, day) == 1
    with django_assert_num_queries(1):  # UPDATE ... RETURNING
        assert services._next_order_number(world.outlet.pk, day) == 2
    assert services._next_order_number(world.outlet.pk, day) == 3
    assert services._next_order_number(world.outlet2.pk, day) == 1
    assert services._next_order_number(world.outlet.pk, date(2026, 3, 2)) == 1
    assert OrderNumberCounter.objects.get(outlet=world.outlet, business_date=day).last_number == 3


@pytest.mark.django_db
def test_a_counter_another_transaction_created_first_is_incremented(world, monkeypatch):
    """Between our UPDATE finding no row and our INSERT, another creator's row appears: our
    INSERT fails in its savepoint, and the number comes from theirs."""
    day = date(2026, 3, 1)

    class RacedTransaction:
        raced = False

        def atomic(self, *args, **kwargs):
            if not self.raced:
                self.raced = True
                OrderNumberCounter.objects.create(
                    outlet=world.outlet, business_date=day, last_number=7
                )
            return transaction.atomic(*args, **kwargs)

    raced = RacedTransaction()
    monkeypatch.setattr(counters, "transaction", raced)
    assert services._next_order_number(world.outlet.pk, day) == 8
    assert raced.raced
    assert OrderNumberCounter.objects.get(outlet=world.outlet, business_date=day).last_number == 8
