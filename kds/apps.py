from django.apps import AppConfig


class KdsConfig(AppConfig):
    name = "kds"
    default_auto_field = "django.db.models.BigAutoField"
