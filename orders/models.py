"""Orders and their items. Names and prices are snapshots taken at creation."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from catalog.models import Product
from tenants.models import Outlet, Tenant

ZERO = Decimal("0.00")


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    PREPARING = "preparing", "Preparing"
    READY = "ready", "Ready"
    SERVED = "served", "Served"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class OrderType(models.TextChoices):
    DINE_IN = "dine_in", "Dine in"
    TAKEAWAY = "takeaway", "Takeaway"
    DELIVERY = "delivery", "Delivery"


class PaymentStatus(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=2, default=ZERO, **kwargs)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="orders")
    outlet = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=16)
    business_date = models.DateField()
    status = models.CharField(max_length=16, choices=OrderStatus.choices,
                              default=OrderStatus.PENDING)
    version = models.PositiveIntegerField(default=1)
    type = models.CharField(max_length=16, choices=OrderType.choices, default=OrderType.DINE_IN)
    table = models.CharField(max_length=32, blank=True, default="")
    customer_name = models.CharField(max_length=120, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    subtotal = _money()
    service_charge_amount = _money()
    discount_amount = _money()
    tax_amount = _money()
    total = _money()
    payment_status = models.CharField(max_length=20, choices=PaymentStatus.choices,
                                      default=PaymentStatus.UNPAID)
    paid_amount = _money()
    refunded_amount = _money()
    # True while the order holds stock of its track_stock products (taken on confirmation,
    # given back on cancellation), so a cancel never returns stock that was never taken.
    stock_taken = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("outlet", "business_date", "number"), name="order_number_unique_per_day"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(condition=Q(paid_amount__gte=0), name="order_paid_gte_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("paid_amount")),
                name="order_refunded_range",
            ),
        ]
        indexes = [models.Index(fields=("outlet", "status"), name="order_outlet_status")]

    def __str__(self) -> str:
        return self.number


class OrderItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=160)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(999)]
    )
    # Snapshots: [{"id": "<option id>", "name": "...", "price_delta": "5000.00"}]
    modifiers = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    total = models.DecimalField(max_digits=14, decimal_places=2)
    position = models.PositiveSmallIntegerField(default=0)
    # True while this line holds stock of its product: only what was taken is given back,
    # whatever happened to the product's track_stock flag in between.
    stock_taken = models.BooleanField(default=False)

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=999), name="orderitem_qty_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"


class OrderNumberCounter(models.Model):
    """Last order number handed out per outlet and business day (row-locked to allocate)."""

    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="+")
    business_date = models.DateField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("outlet", "business_date"), name="order_counter_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outlet_id} {self.business_date}: {self.last_number}"
