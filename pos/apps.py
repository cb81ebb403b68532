from django.apps import AppConfig


class PosConfig(AppConfig):
    name = "pos"
    verbose_name = "Platform plumbing"
    default_auto_field = "django.db.models.BigAutoField"
