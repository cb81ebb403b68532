from django.apps import AppConfig


class KdsConfig(AppConfig):
    name = "kds"
    verbose_name = "Kitchen display"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Confirming an order fires its tickets and cancelling voids them, inside the order's
        # own transaction: orders knows nothing of kitchens (DESIGN.md, "Dependencies").
        from kds.services import tickets_on_order_status_changed
        from pos.streams.outbox import on_event

        on_event("order.status_changed", tickets_on_order_status_changed)
