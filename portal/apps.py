from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The portal for people (merchants, miners, validators): server-rendered pages over the other apps' selectors.

    It is the top layer: it reads merchants, catalog_sync, recommendations and subnet, and nothing imports it.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
