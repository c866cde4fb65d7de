"""`manage.py run_validator`: the reference validator's HTTP API.

By default the miners are simulated in-process (`--miners N`). With `--local-chain` the validator
registers its hotkey on the local chain, queries the miners registered there through bittensor's
dendrite (`DendriteMinerPool`), and sets its miners' scores as weights on the local chain every
`--weights-interval` seconds. Conversions for scoring come from the gateway's
`{BITRECS_PROXY_URL}/miner/stats/from/<from>/to/<to>` (default proxy: `{APP_URL}/subnet`), and ground-truth
probes from `{BITRECS_PROXY_URL}/validator/probes`, sent to the miners every `--probe-interval` seconds on
average (`subnet.validator.probes`).

With `--subtensor` it runs on bittensor's subtensor (`--subtensor-network`, default BITRECS_NETWORK:
`test`, `finney` or a ws:// endpoint; `subnet.subtensor_chain`). The hotkey must already be registered
(btcli, which costs TAO: the command refuses to start otherwise and never registers). It queries the
metagraph's serving miners (a sample of 16, stake at most 4096, itself left out), saves its standings in
the database and sets weights with `subtensor.set_weights` (version_key 83) every `--weights-interval`
seconds (default 6000, about the public 500 blocks). With `--advertise-ip` it serves that IP and its API
port as its axon on the chain, where gateways find validators.
"""

import functools
import ipaddress
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet import chain
from subnet.management.commands.run_miner import (
    add_subtensor_arguments,
    coldkey_address,
    connect_subtensor,
    load_wallet,
    require_registered,
    serve_on_subtensor,
)
from subnet.models import ChainNeuron
from subnet.validator.actions import GatewayActions
from subnet.validator.app import NETWORKS, ValidatorConfig, ValidatorMetadata, ValidatorServer, create_app
from subnet.validator.dendrite_pool import DendriteMinerPool
from subnet.validator.keeper import LocalChainWeights, ScoreKeeper, WeightSink, record_rounds
from subnet.validator.miners import MinerPool, offline_pool
from subnet.validator.probes import GatewayProbes, ProbeMixer
from subnet.validator.public_key import GatewayKeyUnavailable, GatewayPublicKey

if TYPE_CHECKING:
    from subnet.subtensor_chain import SubtensorChain

# Seconds between weight settings on bittensor's subtensor: the public `--neuron.epoch_length` of 500 blocks
# of 12 s. Sooner, bittensor does not even submit while `weights_rate_limit` blocks have not passed.
SUBTENSOR_WEIGHTS_INTERVAL = 6000.0


class Command(BaseCommand):
    help = "Serve the validator API (/rec, /ping, /version) on BITRECS_VALIDATOR_HOST:PORT (127.0.0.1:7779)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.BITRECS_VALIDATOR_HOST)
        parser.add_argument("--port", type=int, default=settings.BITRECS_VALIDATOR_PORT)
        parser.add_argument("--network", choices=NETWORKS, default=settings.BITRECS_VALIDATOR_NETWORK)
        parser.add_argument("--api-key", default=settings.BITRECS_API_KEY)
        parser.add_argument("--miners", type=int, default=1, help="Offline in-process miners to simulate.")
        parser.add_argument("--log-level", default="warning")
        chains = parser.add_mutually_exclusive_group()
        chains.add_argument(
            "--local-chain",
            action="store_true",
            help="Register on the local chain and query its registered miners through the dendrite.",
        )
        add_subtensor_arguments(chains, parser)
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
            "--advertise-ip",
            default="",
            help="IP gateways reach the API on (local chain default: --host, or 127.0.0.1; "
            "with --subtensor: served as the validator's axon only when given).",
        )
        parser.add_argument(
            "--probe-interval",
            type=float,
            default=30.0,
            help="Mean seconds between ground-truth probes from {BITRECS_PROXY_URL}/validator/probes "
            "(--local-chain and --subtensor; 0: none, and the weights stay the bootstrap ones: validity alone).",
        )
        parser.add_argument(
            "--weights-interval",
            type=float,
            default=None,
            help="Seconds between weight settings (scores are saved then too); default "
            "BITRECS_VALIDATOR_WEIGHTS_INTERVAL_SECONDS, or 6000 with --subtensor.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["api_key"]:
            raise CommandError("BITRECS_API_KEY is not set (or pass --api-key).")
        if options["weights_interval"] is None:
            options["weights_interval"] = (
                SUBTENSOR_WEIGHTS_INTERVAL
                if options["subtensor"]
                else settings.BITRECS_VALIDATOR_WEIGHTS_INTERVAL_SECONDS
            )
        if options["weights_interval"] <= 0:
            raise CommandError("--weights-interval must be positive.")
        if options["stake"] < 0:
            raise CommandError("--stake must not be negative.")
        metadata = ValidatorMetadata(uid=0, hotkey="")
        proxy_url = settings.BITRECS_PROXY_URL or f"{settings.APP_URL.rstrip('/')}/subnet"
        actions = GatewayActions(proxy_url)
        miner_pool: MinerPool
        sink: WeightSink | None = None
        subtensor_chain: SubtensorChain | None = None
        wallet: Any = None
        from subnet.protocol import sign_request_bodies  # bittensor: only when a validator really starts

        # Our own network: the dendrite's signature covers the request body (see sign_request_bodies).
        sign_request_bodies(bool(options["local_chain"]))
        if options["subtensor"]:
            subtensor_chain = connect_subtensor(network=options["subtensor_network"], netuid=options["netuid"])
            miner_pool, metadata, wallet = self._subtensor_pool(subtensor_chain, options)
            sink = subtensor_chain.weight_sink(wallet=wallet)
            miners_text = f"miners of netuid {options['netuid']} on {subtensor_chain.network}"
        elif options["local_chain"]:
            miner_pool, metadata, wallet = self._local_chain_pool(options)
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
        history = None
        if sink is not None:  # the portal's score, weight and rank over time (`ScoreRound`)
            history = functools.partial(record_rounds, netuid=options["netuid"], validator_hotkey=metadata.hotkey)
        keeper = ScoreKeeper(
            sink=sink, actions=actions.totals, weights_interval=options["weights_interval"], history=history
        )
        app = create_app(config=config, miner_pool=miner_pool, public_key=public_key, keeper=keeper)
        try:
            server = ValidatorServer(app, host=options["host"], port=options["port"], log_level=options["log_level"])
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        if options["local_chain"]:
            # The validator's API address, as its axon on the local chain: where gateways find it.
            advertised = options["advertise_ip"] or _advertised_ip(options["host"])
            chain.serve_axon(netuid=options["netuid"], hotkey=metadata.hotkey, ip=advertised, port=server.port)
        elif subtensor_chain is not None and options["advertise_ip"]:
            from subnet.protocol import bt

            axon = bt.Axon(
                wallet=wallet,
                port=server.port,
                ip=options["advertise_ip"],
                external_ip=options["advertise_ip"],
                external_port=server.port,
            )
            serve_on_subtensor(subtensor_chain, axon=axon, stderr=self.stderr, stop=server.stop)
        actions.start()
        mixer: ProbeMixer | None = None
        if wallet is not None and options["probe_interval"] > 0:
            probes = GatewayProbes(proxy_url, keypair=wallet.hotkey, public_key=public_key)
            mixer = ProbeMixer(
                source=probes.fetch,
                pool=miner_pool,
                keeper=keeper,
                network=config.network,
                interval=options["probe_interval"],
            )
            mixer.start()
        self.stdout.write(
            f"Validator API on {server.url} (network {config.network}, gateway key from {key_url}, {miners_text})"
        )
        try:
            server.serve_forever()
        finally:
            actions.stop()
            if mixer is not None:
                mixer.stop()

    def _local_chain_pool(self, options: dict[str, Any]) -> tuple[MinerPool, ValidatorMetadata, Any]:
        """Register the validator's hotkey on the local chain; return the dendrite pool, /version metadata, wallet."""
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
        return pool, ValidatorMetadata(uid=neuron.uid, hotkey=neuron.hotkey, coldkey=neuron.coldkey), wallet

    def _subtensor_pool(
        self, subtensor_chain: "SubtensorChain", options: dict[str, Any]
    ) -> tuple[MinerPool, ValidatorMetadata, Any]:
        """Check the validator's registration on the subtensor; return the dendrite pool, metadata and wallet."""
        wallet = load_wallet(
            path=options["wallet_path"],
            name=options["wallet_name"],
            hotkey=options["hotkey"],
            create=options["create_wallet"],
        )
        hotkey = str(wallet.hotkey.ss58_address)
        uid = require_registered(subtensor_chain, wallet=wallet, options=options)
        if not subtensor_chain.has_validator_permit(hotkey):
            self.stderr.write(
                f"warning: {hotkey} (uid {uid}) has no validator permit on netuid {options['netuid']}: "
                "the chain may refuse its weights, and miners that only answer permitted validators refuse it."
            )
        pool = DendriteMinerPool(
            wallet=wallet,
            netuid=options["netuid"],
            miners=lambda: subtensor_chain.miners(exclude_hotkey=hotkey),
            timeout=options["timeout"],
            external_ip=options["advertise_ip"] or "127.0.0.1",
        )
        return pool, ValidatorMetadata(uid=uid, hotkey=hotkey, coldkey=coldkey_address(wallet)), wallet


def _advertised_ip(host: str) -> str:
    """The address gateways reach a server bound to `host` on: loopback for a wildcard bind."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        return host
    return "127.0.0.1" if unspecified else host
