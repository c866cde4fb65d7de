"""`manage.py run_miner`: the reference miner's axon, answering with an LLM provider or offline."""

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet.miner.providers import PROVIDER_NAMES, ProviderConfigError, load_provider


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

    def handle(self, *args: Any, **options: Any) -> None:
        allowed = frozenset(options["allow_hotkey"])
        if not allowed and not options["allow_any_hotkey"]:
            raise CommandError("Pass --allow-hotkey SS58 (repeatable) or --allow-any-hotkey.")
        try:
            provider = load_provider(options["provider"])
        except ProviderConfigError as exc:
            raise CommandError(str(exc)) from exc
        wallet = self._load_wallet(options)
        # Imported here: subnet.miner.neuron imports bittensor (through subnet.protocol).
        from subnet.miner.neuron import MinerNeuron

        def allowed_hotkeys() -> frozenset[str]:
            return _ANYONE if options["allow_any_hotkey"] else allowed

        try:
            neuron = MinerNeuron(
                wallet=wallet,
                provider=provider,
                allowed_hotkeys=allowed_hotkeys,
                uid=options["uid"],
                port=options["port"],
            )
            neuron.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{options['port']}: {exc}") from exc
        callers = "any hotkey" if options["allow_any_hotkey"] else f"{len(allowed)} allowed hotkey(s)"
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

    def _load_wallet(self, options: dict[str, Any]) -> Any:
        from bittensor_wallet import Wallet

        path = options["wallet_path"] or str(Path(settings.LOCAL_DIR) / "wallets")
        wallet = Wallet(name=options["wallet_name"], hotkey=options["hotkey"], path=path)
        if options["create_wallet"]:
            wallet.create_if_non_existent(coldkey_use_password=False, hotkey_use_password=False, suppress=True)
        if not wallet.hotkey_file.exists_on_device():
            raise CommandError(
                f"No hotkey {options['hotkey']!r} in wallet {options['wallet_name']!r} under {path}; "
                "pass --create-wallet to create one."
            )
        try:
            wallet.hotkey  # noqa: B018 - unlocks (decrypts) the hotkey now rather than on the first request
        except Exception as exc:
            raise CommandError(f"cannot read the hotkey: {exc}") from exc
        return wallet


class _Anyone(frozenset[str]):
    """An allow-list that contains every hotkey."""

    def __contains__(self, item: object) -> bool:
        return True


_ANYONE = _Anyone()
