"""`manage.py run_validator`: the reference validator's HTTP API.

By default the miners are simulated in-process (`--miners N`). With `--local-chain` the validator
registers its hotkey on the local chain, queries the miners registered there through bittensor's
dendrite (`DendriteMinerPool`), and sets its miners' scores as weights on the local chain every
`--weights-interval` seconds. Conversions for scoring come from the gateway's
`{BITRECS_PROXY_URL}/miner/stats/from/<from>/to/<to>` (default proxy: `{APP_URL}/subnet`).
"""

import ipaddress
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet import chain
from subnet.management.commands.run_miner import coldkey_address, load_wallet
from subnet.models import ChainNeuron
from subnet.validator.actions import GatewayActions
from subnet.validator.app import NETWORKS, ValidatorConfig, ValidatorMetadata, ValidatorServer, create_app
from subnet.validator.dendrite_pool import DendriteMinerPool
from subnet.validator.keeper import LocalChainWeights, ScoreKeeper, WeightSink
from subnet.validator.miners import MinerPool, offline_pool
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
        parser.add_argument(
            "--local-chain",
            action="store_true",
            help="Register on the local chain and query its registered miners through the dendrite.",
        )
        parser.add_argument("--netuid", type=int, default=settings.BITRECS_NETUID, help="Netuid on the local chain.")
        parser.add_argument(
            "--wallet-path", default=None, help="Folder of bittensor wallets (default BITRECS_LOCAL_DIR/wallets)."
        )
        parser.add_argument("--wallet-name", default="validator")
        parser.add_argument("--hotkey", default="default", help="Hotkey name inside the wallet.")
        parser.add_argument(
            "--create-wallet",
            action="store_true",
            help="Create the wallet (unencrypted keys, local use only) if it does not exist.",
        )
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds a miner has to answer (dendrite).")
        parser.add_argument(
            "--stake", type=float, default=1000.0, help="Stake recorded on the local chain (gateways draw by stake)."
        )
        parser.add_argument(
            "--advertise-ip", default="", help="IP gateways reach the API on (default: --host, or 127.0.0.1)."
        )
        parser.add_argument(
            "--weights-interval",
            type=float,
            default=settings.BITRECS_VALIDATOR_WEIGHTS_INTERVAL_SECONDS,
            help="Seconds between weight settings on the local chain (scores are saved then too).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["api_key"]:
            raise CommandError("BITRECS_API_KEY is not set (or pass --api-key).")
        if options["weights_interval"] <= 0:
            raise CommandError("--weights-interval must be positive.")
        if options["stake"] < 0:
            raise CommandError("--stake must not be negative.")
        metadata = ValidatorMetadata(uid=0, hotkey="")
        proxy_url = settings.BITRECS_PROXY_URL or f"{settings.APP_URL.rstrip('/')}/subnet"
        actions = GatewayActions(proxy_url)
        miner_pool: MinerPool
        sink: WeightSink | None = None
        if options["local_chain"]:
            miner_pool, metadata = self._local_chain_pool(options)
            sink = LocalChainWeights(netuid=options["netuid"], validator_hotkey=metadata.hotkey)
            miners_text = f"miners of local chain netuid {options['netuid']}"
        else:
            miner_pool = offline_pool(count=options["miners"])
            miners_text = f"{options['miners']} offline miner(s)"
        try:
            config = ValidatorConfig(
                api_key=options["api_key"],
                network=options["network"],
                whitelist=tuple(settings.BITRECS_VALIDATOR_WHITELIST),
                rate_limit_per_minute=settings.BITRECS_VALIDATOR_RATE_LIMIT_PER_MINUTE,
                metadata=metadata,
            )
        except ValueError as exc:
            raise CommandError(f"invalid validator configuration: {exc}") from exc
        key_url = f"{proxy_url}/public_key"
        public_key = GatewayPublicKey(key_url)
        if config.network != "localnet":
            try:
                public_key.get()
            except GatewayKeyUnavailable as exc:
                # The web process may still be starting (`make run`); the key is fetched on the first /rec.
                self.stderr.write(f"warning: {exc}; retrying on the first /rec")
        keeper = ScoreKeeper(sink=sink, actions=actions.totals, weights_interval=options["weights_interval"])
        app = create_app(config=config, miner_pool=miner_pool, public_key=public_key, keeper=keeper)
        try:
            server = ValidatorServer(app, host=options["host"], port=options["port"], log_level=options["log_level"])
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        if options["local_chain"]:
            # The validator's API address, as its axon on the local chain: where gateways find it.
            advertised = options["advertise_ip"] or _advertised_ip(options["host"])
            chain.serve_axon(netuid=options["netuid"], hotkey=metadata.hotkey, ip=advertised, port=server.port)
        actions.start()
        self.stdout.write(
            f"Validator API on {server.url} (network {config.network}, gateway key from {key_url}, {miners_text})"
        )
        server.serve_forever()

    def _local_chain_pool(self, options: dict[str, Any]) -> tuple[MinerPool, ValidatorMetadata]:
        """Register the validator's hotkey on the local chain; return the dendrite pool and the /version metadata."""
        wallet = load_wallet(
            path=options["wallet_path"],
            name=options["wallet_name"],
            hotkey=options["hotkey"],
            create=options["create_wallet"],
        )
        neuron = chain.register_neuron(
            netuid=options["netuid"],
            hotkey=wallet.hotkey.ss58_address,
            coldkey=coldkey_address(wallet),
            role=ChainNeuron.Role.VALIDATOR,
            stake=options["stake"],
        )
        pool = DendriteMinerPool(wallet=wallet, netuid=options["netuid"], timeout=options["timeout"])
        return pool, ValidatorMetadata(uid=neuron.uid, hotkey=neuron.hotkey, coldkey=neuron.coldkey)


def _advertised_ip(host: str) -> str:
    """The address gateways reach a server bound to `host` on: loopback for a wildcard bind."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        return host
    return "127.0.0.1" if unspecified else host
