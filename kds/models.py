"""Kitchen stations (with the routing they hold), and the tickets fired to them.

Routing lives on the station, per outlet: a prep station lists the products and categories it
cooks. The through tables carry the outlet so the database itself holds the rule "within one
outlet, a product (or a category) is routed to at most one station".
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from catalog.models import Category, Product
from orders.models import Order, OrderItem, OrderType
from tenants.models import Outlet, Tenant


class StationKind(models.TextChoices):
    PREP = "prep", "Prep"  # receives tickets
    EXPO = "expo", "Expo"  # sees every ticket of the outlet, receives none of its own


class Station(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="stations")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=8, choices=StationKind.choices, default=StationKind.PREP)
    is_default = models.BooleanField(default=False)
    categories = models.ManyToManyField(
        Category, through="StationCategory", blank=True, related_name="stations"
    )
    products = models.ManyToManyField(
        Product, through="StationProduct", blank=True, related_name="stations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("tenant", "outlet", "name"), name="station_name_unique_per_outlet"
            ),
            # At most one default per outlet; services keep "exactly one while any prep exists".
            models.UniqueConstraint(
                fields=("tenant", "outlet"),
                condition=Q(is_default=True),
                name="station_one_default_per_outlet",
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(kind="prep"), name="station_default_is_prep"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=("prep", "expo")), name="station_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StationCategory(models.Model):
    """A category (and, unless a nearer one is listed elsewhere, its subtree) cooked here."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="+")
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("tenant", "outlet", "category"), name="station_category_once_per_outlet"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category_id} -> {self.station_id}"


class StationProduct(models.Model):
    """A product cooked here, whatever its category says."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="+")
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("tenant", "outlet", "product"), name="station_product_once_per_outlet"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} -> {self.station_id}"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    VOIDED = "voided", "Voided"


class TicketPriority(models.TextChoices):
    NORMAL = "normal", "Normal"
    RUSH = "rush", "Rush"


class Ticket(models.Model):
    """The part of one order that one prep station cooks. Fired once per (order, station)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="tickets")
    # A station that has cooked tickets keeps them: its prep history feeds the metrics.
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="tickets")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="tickets")
    # Snapshots of the order at firing time: a screen never needs the order itself.
    order_number = models.CharField(max_length=16)
    type = models.CharField(max_length=16, choices=OrderType.choices)
    table = models.CharField(max_length=32, blank=True, default="")
    customer_name = models.CharField(max_length=120, blank=True, default="")
    status = models.CharField(max_length=8, choices=TicketStatus.choices,
                              default=TicketStatus.OPEN)
    priority = models.CharField(max_length=8, choices=TicketPriority.choices,
                                default=TicketPriority.NORMAL)
    fired_at = models.DateTimeField()
    bumped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("fired_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("order", "station"), name="ticket_once_per_station"),
            models.CheckConstraint(
                condition=Q(status__in=("open", "done", "voided")), name="ticket_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=("normal", "rush")), name="ticket_priority_valid"
            ),
            # A done ticket knows when it was bumped; an open one has not been (yet, again).
            models.CheckConstraint(
                condition=(Q(status="done") & Q(bumped_at__isnull=False))
                | (Q(status="open") & Q(bumped_at__isnull=True))
                | Q(status="voided"),
                name="ticket_bumped_at_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=("outlet", "status", "fired_at"), name="ticket_outlet_status"),
            models.Index(fields=("station", "status", "bumped_at"), name="ticket_station_bumped"),
        ]

    def __str__(self) -> str:
        return f"{self.order_number} @ {self.station_id}"


class TicketItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    COOKING = "cooking", "Cooking"
    DONE = "done", "Done"
    VOIDED = "voided", "Voided"


class TicketItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=160)
    quantity = models.PositiveIntegerField()
    # Snapshot of the chosen options: [{"id": "<option id>", "name": "Extra cheese"}]
    modifiers = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=8, choices=TicketItemStatus.choices,
                              default=TicketItemStatus.QUEUED)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.UniqueConstraint(fields=("ticket", "order_item"), name="ticket_item_once"),
            models.CheckConstraint(
                condition=Q(status__in=("queued", "cooking", "done", "voided")),
                name="ticket_item_status_valid",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="ticket_item_qty_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"
