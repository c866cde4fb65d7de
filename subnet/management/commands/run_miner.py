"""`manage.py run_miner`: the reference miner's axon, answering with an LLM provider or offline.

With `--local-chain` the miner registers its hotkey on the local chain (`subnet.chain`), serves its
axon there, and answers the validators registered on it.

With `--subtensor` it runs on bittensor's subtensor (`--subtensor-network`, default BITRECS_NETWORK:
`test`, `finney` or a ws:// endpoint; `subnet.subtensor_chain`). The hotkey must already be registered on
the netuid (btcli, which costs TAO: this command refuses to start otherwise and never registers). The
axon listens on `--host` (0.0.0.0), is served on the chain at `--external-ip` (looked up if not given)
and `--port`, and answers the hotkeys with a validator permit in the metagraph (resynced every
BITRECS_METAGRAPH_TTL_SECONDS) plus any `--allow-hotkey`.
"""

import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet import chain
from subnet.miner.providers import PROVIDER_NAMES, ProviderConfigError, load_provider
from subnet.models import ChainNeuron

if TYPE_CHECKING:
    from subnet.subtensor_chain import SubtensorChain

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Serve the reference miner (POST /BitrecsRequest) on 127.0.0.1:PORT. LLM settings come from "
        "BITRECS_LLM_<PROVIDER>_BASE_URL / _API_KEY / _MODEL (see subnet/miner/providers.py)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", required=True, choices=PROVIDER_NAMES)
        parser.add_argument("--port", type=int, default=8091)
        parser.add_argument(
            "--wallet-path", default=None, help="Folder of bittensor wallets (default BITRECS_LOCAL_DIR/wallets)."
        )
        parser.add_argument("--wallet-name", default="miner")
        parser.add_argument("--hotkey", default="default", help="Hotkey name inside the wallet.")
        parser.add_argument("--uid", type=int, default=0, help="The uid this miner reports as miner_uid.")
        parser.add_argument(
            "--allow-hotkey",
            action="append",
            default=[],
            metavar="SS58",
            help="A validator hotkey allowed to query (repeatable).",
        )
        parser.add_argument(
            "--create-wallet",
            action="store_true",
            help="Create the wallet (unencrypted keys, local use only) if it does not exist.",
        )
        parser.add_argument(
            "--allow-any-hotkey",
            action="store_true",
            help="Answer any signed caller (testing; without --subtensor the axon listens on loopback only).",
        )
        chains = parser.add_mutually_exclusive_group()
        chains.add_argument(
            "--local-chain",
            action="store_true",
            help="Register on the local chain, serve the axon there and answer its registered validators.",
        )
        add_subtensor_arguments(chains, parser)
        parser.add_argument(
            "--host",
            default="0.0.0.0",  # noqa: S104 - on a real chain validators reach the miner from the internet
            help="With --subtensor: the address the axon listens on (default 0.0.0.0).",
        )
        parser.add_argument(
            "--external-ip",
            default="",
            help="With --subtensor: the IP validators reach the axon on, served on the chain (default: looked up).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        allowed = frozenset(options["allow_hotkey"])
        local_chain = options["local_chain"]
        on_subtensor = options["subtensor"]
        if not allowed and not options["allow_any_hotkey"] and not local_chain and not on_subtensor:
            raise CommandError(
                "Pass --allow-hotkey SS58 (repeatable), --allow-any-hotkey, --local-chain or --subtensor."
            )
        subtensor_chain = (
            connect_subtensor(network=options["subtensor_network"], netuid=options["netuid"]) if on_subtensor else None
        )
        try:
            provider = load_provider(options["provider"])
        except ProviderConfigError as exc:
            raise CommandError(str(exc)) from exc
        wallet = load_wallet(
            path=options["wallet_path"],
            name=options["wallet_name"],
            hotkey=options["hotkey"],
            create=options["create_wallet"],
        )
        # Imported here: subnet.miner.neuron imports bittensor (through subnet.protocol).
        from subnet.miner.neuron import LOOPBACK, MinerNeuron
        from subnet.protocol import sign_request_bodies

        # Our own network: the validator's signature covers the request body (see sign_request_bodies).
        sign_request_bodies(bool(local_chain))

        uid = options["uid"]
        chain_validators: Callable[[], frozenset[str]] | None = None
        if subtensor_chain is not None:
            uid = require_registered(subtensor_chain, wallet=wallet, options=options)
            chain_validators = subtensor_chain.validator_allow_list()
        elif local_chain:
            uid = chain.register_neuron(
                netuid=options["netuid"],
                hotkey=wallet.hotkey.ss58_address,
                coldkey=coldkey_address(wallet),
                role=ChainNeuron.Role.MINER,
            ).uid
            chain_validators = chain.validator_allow_list(netuid=options["netuid"])

        def allowed_hotkeys() -> Collection[str]:
            if options["allow_any_hotkey"]:
                return _ANYONE
            if chain_validators is not None:
                return allowed | chain_validators()
            return allowed

        host = options["host"] if subtensor_chain is not None else LOOPBACK
        external_ip = (options["external_ip"] or _external_ip()) if subtensor_chain is not None else None
        try:
            neuron = MinerNeuron(
                wallet=wallet,
                provider=provider,
                allowed_hotkeys=allowed_hotkeys,
                uid=uid,
                port=options["port"],
                local=subtensor_chain is None,
                host=host,
                external_ip=external_ip,
            )
            neuron.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{options['port']}: {exc}") from exc
        tick: Callable[[], object] = _idle
        if subtensor_chain is not None:
            serve_on_subtensor(subtensor_chain, axon=neuron.axon, stderr=self.stderr, stop=neuron.stop)
            tick = subtensor_chain.metagraph  # resync the validators' permits when due
        elif local_chain:
            chain.serve_axon(netuid=options["netuid"], hotkey=neuron.hotkey, ip=LOOPBACK, port=neuron.port)
        if options["allow_any_hotkey"]:
            callers = "any hotkey"
        elif subtensor_chain is not None:
            callers = f"the permitted validators of netuid {options['netuid']} on {subtensor_chain.network}"
            callers += f" and {len(allowed)} allowed hotkey(s)" if allowed else ""
        elif local_chain:
            callers = f"the validators of local chain netuid {options['netuid']}"
            callers += f" and {len(allowed)} allowed hotkey(s)" if allowed else ""
        else:
            callers = f"{len(allowed)} allowed hotkey(s)"
        address = f"{external_ip}:{neuron.port}" if external_ip else f"127.0.0.1:{neuron.port}"
        self.stdout.write(
            f"Miner {neuron.hotkey} (uid {neuron.uid}) on http://{address}/BitrecsRequest, "
            f"model {neuron.model}, answering {callers}"
        )
        try:
            run_until_interrupted(tick)
        finally:
            neuron.stop()


def _idle() -> None:
    pass


def run_until_interrupted(tick: Callable[[], object], *, period: float = 1.0) -> None:
    """Call `tick` every `period` seconds until Ctrl-C (a failing tick is logged, not fatal)."""
    try:
        while True:
            try:
                tick()
            except Exception:
                logger.exception("subnet.miner_tick_failed")
            time.sleep(period)
    except KeyboardInterrupt:
        pass


# ----------------------------------------------------------------------------- bittensor's subtensor (test/finney)


def add_subtensor_arguments(group: Any, parser: CommandParser) -> None:
    """`--subtensor` (in the chain's mutually exclusive `group`) and `--subtensor-network`."""
    group.add_argument(
        "--subtensor",
        action="store_true",
        help="Run on bittensor's subtensor (--subtensor-network); the hotkey must be registered with btcli.",
    )
    parser.add_argument(
        "--subtensor-network",
        default=settings.BITRECS_NETWORK,
        help="With --subtensor: test, finney or a ws(s):// endpoint (default BITRECS_NETWORK).",
    )
    parser.add_argument(
        "--netuid", type=int, default=settings.BITRECS_NETUID, help="Netuid on the chain (default BITRECS_NETUID)."
    )


def connect_subtensor(*, network: str, netuid: int) -> "SubtensorChain":
    """Connect to the subtensor of `network` and read the metagraph; `CommandError` if no chain answers."""
    from subnet.subtensor_chain import NETWORKS, ChainUnreachable, SubtensorChain

    if network not in NETWORKS and not network.startswith(("ws://", "wss://")):
        raise CommandError(
            f"--subtensor-network must be one of {', '.join(NETWORKS)} or a ws(s):// endpoint, not {network!r} "
            "(BITRECS_NETWORK=local is the local chain in the database: use --local-chain)."
        )
    try:
        subtensor_chain = SubtensorChain(
            network=network, netuid=netuid, resync_seconds=float(settings.BITRECS_METAGRAPH_TTL_SECONDS)
        )
        subtensor_chain.sync()
    except ChainUnreachable as exc:
        raise CommandError(f"No chain reachable: {exc}") from exc
    return subtensor_chain


def require_registered(subtensor_chain: "SubtensorChain", *, wallet: Any, options: dict[str, Any]) -> int:
    """The wallet hotkey's uid on the subtensor; `CommandError` naming btcli if it is not registered."""
    from subnet.subtensor_chain import ChainUnreachable, NotRegistered

    try:
        return subtensor_chain.require_registered(
            wallet.hotkey.ss58_address, wallet_name=options["wallet_name"], hotkey_name=options["hotkey"]
        )
    except NotRegistered as exc:
        raise CommandError(str(exc)) from exc
    except ChainUnreachable as exc:
        raise CommandError(f"No chain reachable: {exc}") from exc


def serve_on_subtensor(subtensor_chain: "SubtensorChain", *, axon: Any, stderr: Any, stop: Callable[[], None]) -> None:
    """Serve the axon on the subtensor; a refused extrinsic is a warning (the axon served before may still hold)."""
    from subnet.subtensor_chain import ChainCallFailed, ChainUnreachable

    try:
        subtensor_chain.serve_axon(axon)
    except ChainCallFailed as exc:
        stderr.write(f"warning: {exc}")
    except ChainUnreachable as exc:
        stop()
        raise CommandError(f"No chain reachable: {exc}") from exc


def _external_ip() -> str:
    """This machine's public IP (bittensor asks internet services); `CommandError` asking for --external-ip."""
    from subnet.protocol import bt

    try:
        return str(bt.utils.networking.get_external_ip())
    except Exception as exc:
        raise CommandError(f"cannot find this machine's external IP ({exc}); pass --external-ip.") from exc


def load_wallet(*, path: str | None, name: str, hotkey: str, create: bool) -> Any:
    """Load (or, with `create`, create unencrypted) the bittensor wallet `name`/`hotkey` under `path`.

    `path` defaults to BITRECS_LOCAL_DIR/wallets. Raises `CommandError` when the hotkey is missing or unreadable.
    """
    from bittensor_wallet import Wallet

    path = path or str(Path(settings.LOCAL_DIR) / "wallets")
    wallet = Wallet(name=name, hotkey=hotkey, path=path)
    if create:
        wallet.create_if_non_existent(coldkey_use_password=False, hotkey_use_password=False, suppress=True)
    if not wallet.hotkey_file.exists_on_device():
        raise CommandError(f"No hotkey {hotkey!r} in wallet {name!r} under {path}; pass --create-wallet to create one.")
    try:
        wallet.hotkey  # noqa: B018 - unlocks (decrypts) the hotkey now rather than on the first request
    except Exception as exc:
        raise CommandError(f"cannot read the hotkey: {exc}") from exc
    return wallet


def coldkey_address(wallet: Any) -> str:
    """The wallet's coldkey SS58 address, or "" when it has no readable coldkey."""
    try:
        return str(wallet.coldkeypub.ss58_address)
    except Exception:
        return ""


class _Anyone(frozenset[str]):
    """An allow-list that contains every hotkey."""

    def __contains__(self, item: object) -> bool:
        return True


_ANYONE = _Anyone()
