from django.apps import AppConfig


class SubnetConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "subnet"
