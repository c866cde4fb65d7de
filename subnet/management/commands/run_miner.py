"""`manage.py run_miner`: the reference miner's axon, answering with an LLM provider or offline.

With `--local-chain` the miner registers its hotkey on the local chain (`subnet.chain`), serves its
axon there, and answers the validators registered on it.
"""

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet import chain
from subnet.miner.providers import PROVIDER_NAMES, ProviderConfigError, load_provider
from subnet.models import ChainNeuron


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
            help="Answer any signed caller (local testing; the axon still listens on loopback only).",
        )
        parser.add_argument(
            "--local-chain",
            action="store_true",
            help="Register on the local chain, serve the axon there and answer its registered validators.",
        )
        parser.add_argument("--netuid", type=int, default=settings.BITRECS_NETUID, help="Netuid on the local chain.")

    def handle(self, *args: Any, **options: Any) -> None:
        allowed = frozenset(options["allow_hotkey"])
        local_chain = options["local_chain"]
        if not allowed and not options["allow_any_hotkey"] and not local_chain:
            raise CommandError("Pass --allow-hotkey SS58 (repeatable), --allow-any-hotkey or --local-chain.")
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

        uid = options["uid"]
        chain_validators: Callable[[], frozenset[str]] | None = None
        if local_chain:
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

        try:
            neuron = MinerNeuron(
                wallet=wallet,
                provider=provider,
                allowed_hotkeys=allowed_hotkeys,
                uid=uid,
                port=options["port"],
            )
            neuron.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{options['port']}: {exc}") from exc
        if local_chain:
            chain.serve_axon(netuid=options["netuid"], hotkey=neuron.hotkey, ip=LOOPBACK, port=neuron.port)
        if options["allow_any_hotkey"]:
            callers = "any hotkey"
        elif local_chain:
            callers = f"the validators of local chain netuid {options['netuid']}"
            callers += f" and {len(allowed)} allowed hotkey(s)" if allowed else ""
        else:
            callers = f"{len(allowed)} allowed hotkey(s)"
        self.stdout.write(
            f"Miner {neuron.hotkey} (uid {neuron.uid}) on http://127.0.0.1:{neuron.port}/BitrecsRequest, "
            f"model {neuron.model}, answering {callers}"
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            neuron.stop()


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
