"""`manage.py run_validator`: the reference validator's HTTP API, with offline in-process miners for now."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet.validator.app import NETWORKS, ValidatorConfig, ValidatorMetadata, ValidatorServer, create_app
from subnet.validator.miners import offline_pool
from subnet.validator.public_key import GatewayKeyUnavailable, GatewayPublicKey


class Command(BaseCommand):
    help = "Serve the validator API (/rec, /ping, /version) on BITRECS_VALIDATOR_HOST:PORT (127.0.0.1:7779)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.BITRECS_VALIDATOR_HOST)
        parser.add_argument("--port", type=int, default=settings.BITRECS_VALIDATOR_PORT)
        parser.add_argument("--network", choices=NETWORKS, default=settings.BITRECS_VALIDATOR_NETWORK)
        parser.add_argument("--api-key", default=settings.BITRECS_API_KEY)
        parser.add_argument("--miners", type=int, default=1, help="Offline in-process miners to simulate.")
        parser.add_argument("--log-level", default="warning")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["api_key"]:
            raise CommandError("BITRECS_API_KEY is not set (or pass --api-key).")
        try:
            config = ValidatorConfig(
                api_key=options["api_key"],
                network=options["network"],
                whitelist=tuple(settings.BITRECS_VALIDATOR_WHITELIST),
                rate_limit_per_minute=settings.BITRECS_VALIDATOR_RATE_LIMIT_PER_MINUTE,
                metadata=ValidatorMetadata(uid=0, hotkey=""),
            )
        except ValueError as exc:
            raise CommandError(f"invalid validator configuration: {exc}") from exc
        key_url = f"{settings.BITRECS_PROXY_URL or settings.APP_URL}/subnet/public_key"
        public_key = GatewayPublicKey(key_url)
        if config.network != "localnet":
            try:
                public_key.get()
            except GatewayKeyUnavailable as exc:
                # The web process may still be starting (`make run`); the key is fetched on the first /rec.
                self.stderr.write(f"warning: {exc}; retrying on the first /rec")
        app = create_app(config=config, miner_pool=offline_pool(count=options["miners"]), public_key=public_key)
        try:
            server = ValidatorServer(app, host=options["host"], port=options["port"], log_level=options["log_level"])
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        self.stdout.write(
            f"Validator API on {server.url} (network {config.network}, gateway key from {key_url}, "
            f"{options['miners']} offline miner(s))"
        )
        server.serve_forever()
