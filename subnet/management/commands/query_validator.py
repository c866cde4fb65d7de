"""`manage.py query_validator`: send one signed request about a product to a validator and print the checked answer."""

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet.client import ValidatorClient, ValidatorError
from subnet.exceptions import SubnetError
from subnet.selectors import (
    DEFAULT_POOL_SIZE,
    MAX_POOL_SIZE,
    MIN_POOL_SIZE,
    get_product_by_wire_sku,
    get_store_by_site_key,
)
from subnet.services import request_recommendations
from subnet.signing import SIGNED_FIELDS, SIGNED_FIELDS_WITH_MINER_SIGNATURE
from subnet.types import MAX_NUM_RESULTS, MIN_NUM_RESULTS


class Command(BaseCommand):
    help = "Send one signed /rec request for a product of a store to a validator; print the checked answer as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="Validator base URL, e.g. http://127.0.0.1:7779")
        parser.add_argument("--api-key", required=True, help="The validator's BITRECS_API_KEY.")
        parser.add_argument("--store", required=True, help="Site key of the store.")
        parser.add_argument("--sku", required=True, help="SKU of the product being viewed (the query).")
        parser.add_argument(
            "--num", type=int, default=5, help=f"Recommendations wanted ({MIN_NUM_RESULTS}-{MAX_NUM_RESULTS})."
        )
        parser.add_argument(
            "--scheme",
            choices=("ed25519", "localnet"),
            default="ed25519",
            help="ed25519: sign with BITRECS_SIGNING_KEY; localnet: the public subnet's HMAC, only for a "
            "public validator started with NETWORK=localnet.",
        )
        parser.add_argument(
            "--with-miner-signature",
            action="store_true",
            help="Sign the 11 fields of validators 0.8.9 and later (adds a null miner_signature).",
        )
        parser.add_argument(
            "--pool-size", type=int, default=DEFAULT_POOL_SIZE, help="Products in the request's catalog."
        )
        parser.add_argument("--timeout", type=float, default=settings.BITRECS_VALIDATOR_TIMEOUT_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        if not MIN_NUM_RESULTS <= options["num"] <= MAX_NUM_RESULTS:
            raise CommandError(f"--num must be {MIN_NUM_RESULTS} to {MAX_NUM_RESULTS}")
        if not MIN_POOL_SIZE <= options["pool_size"] <= MAX_POOL_SIZE:
            raise CommandError(f"--pool-size must be {MIN_POOL_SIZE} to {MAX_POOL_SIZE}")
        store = get_store_by_site_key(site_key=options["store"])
        if store is None:
            raise CommandError(f"no store with site key {options['store']!r}")
        product = get_product_by_wire_sku(store=store, sku=options["sku"])
        if product is None:
            raise CommandError(f"store {store.site_key!r} has no product with SKU {options['sku']!r}")
        try:
            client = ValidatorClient(
                options["url"],
                options["api_key"],
                network="localnet" if options["scheme"] == "localnet" else settings.BITRECS_NETWORK,
                signed_fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE if options["with_miner_signature"] else SIGNED_FIELDS,
                timeout=options["timeout"],
                call_budget=max(options["timeout"], settings.BITRECS_VALIDATOR_CALL_BUDGET_SECONDS),
                max_in_flight=settings.BITRECS_VALIDATOR_MAX_IN_FLIGHT,
                requests_per_minute=settings.BITRECS_VALIDATOR_REQUESTS_PER_MINUTE,
            )
            checked = request_recommendations(
                client=client, store=store, product=product, num_results=options["num"], pool_size=options["pool_size"]
            )
        except ValidatorError as exc:
            raise CommandError(f"validator {options['url']} gave no usable answer: {exc}") from exc
        except SubnetError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except ValueError as exc:
            raise CommandError(f"cannot build the request: {exc}") from exc
        self.stdout.write(json.dumps(checked.to_dict(), indent=2, ensure_ascii=False))
