from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from bitrecs_site.db import require_migrated_database
from merchants.exceptions import InvalidRequest
from merchants.models import Store
from merchants.services.stores import create_store


class Command(BaseCommand):
    help = "Create a store by hand (a custom platform has no API: its catalog comes from imports); prints the site key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--platform", required=True, choices=Store.Platform.values)
        parser.add_argument("--domain", required=True, help="the store's domain, e.g. shop.example.com")
        parser.add_argument("--site-key", default=None, help="the public key the widget sends (generated if omitted)")
        parser.add_argument("--name", default="", help="a display name (defaults to the domain)")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated_database()
        try:
            store = create_store(
                platform=options["platform"],
                domain=options["domain"],
                site_key=options["site_key"],
                name=options["name"],
            )
        except InvalidRequest as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(store.site_key)
