"""Tenants (restaurant companies), their outlets, and staff users."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    SUPER_ADMIN = "super_admin", "Super admin"
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    CASHIER = "cashier", "Cashier"
    KITCHEN = "kitchen", "Kitchen"


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, default="IDR")
    timezone = models.CharField(max_length=64, default="Asia/Jakarta")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


_RATE = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))]


class Outlet(models.Model):
    """A restaurant location: one kitchen, one event stream."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="outlets")
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, default="Asia/Jakarta")
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0"),
                                   validators=_RATE)
    service_charge_rate = models.DecimalField(max_digits=5, decimal_places=4,
                                              default=Decimal("0"), validators=_RATE)
    kds_warn_after_s = models.PositiveIntegerField(default=480)
    kds_late_after_s = models.PositiveIntegerField(default=900)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=("tenant", "name"), name="outlet_name_unique_per_tenant"
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0) & Q(tax_rate__lte=1), name="outlet_tax_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(service_charge_rate__gte=0) & Q(service_charge_rate__lte=1),
                name="outlet_service_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(kds_late_after_s__gte=models.F("kds_warn_after_s")),
                name="outlet_late_after_warn",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StaffUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        """``createsuperuser`` makes a platform super admin, who belongs to no tenant."""
        extra_fields.setdefault("role", Role.SUPER_ADMIN)
        extra_fields["tenant"] = None
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """Staff member. Belongs to one tenant (a super admin to none) and a set of outlets."""

    objects = StaffUserManager()

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CASHIER)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="users", null=True, blank=True
    )
    outlets = models.ManyToManyField(Outlet, related_name="staff", blank=True)

    class Meta:
        ordering = ("username",)
        constraints = [
            models.CheckConstraint(
                condition=Q(role="super_admin", tenant__isnull=True)
                | (~Q(role="super_admin") & Q(tenant__isnull=False)),
                name="user_tenant_matches_role",
            ),
        ]

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.SUPER_ADMIN
