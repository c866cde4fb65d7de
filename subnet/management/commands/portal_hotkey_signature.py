"""`manage.py portal_hotkey_signature`: sign the portal's hotkey sign-in message with a local wallet's hotkey.

For the neurons of `make run` (wallets under BITRECS_LOCAL_DIR/wallets: miner1, miner2, miner3 and validator,
hotkey `default`): open /portal/hotkey, ask for the message, then

    python manage.py portal_hotkey_signature --wallet-name miner1 --message '<the message>'

(or `--message -` to paste it on standard input) and paste the printed signature. `--show-hotkey` prints the
wallet's hotkey address, which the sign-in page asks for first. On a real network use `btcli wallet sign
--use-hotkey` or `wallet.hotkey.sign(message).hex()` instead: this command never creates a wallet.
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subnet.management.commands.run_miner import load_wallet
from subnet.signin import InvalidMessage, parse_message


class Command(BaseCommand):
    help = "Print the 0x signature of a portal sign-in message made with a local wallet's hotkey."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wallet-path", default=None, help="Folder of bittensor wallets (default BITRECS_LOCAL_DIR/wallets)."
        )
        parser.add_argument("--wallet-name", default="miner1", help="The wallet (make run: miner1-3, validator).")
        parser.add_argument("--hotkey", default="default", help="Hotkey name inside the wallet.")
        parser.add_argument("--message", default=None, help="The sign-in message, or - to read it from stdin.")
        parser.add_argument("--show-hotkey", action="store_true", help="Only print the hotkey's SS58 address.")

    def handle(self, *args: Any, **options: Any) -> None:
        wallet = load_wallet(
            path=options["wallet_path"], name=options["wallet_name"], hotkey=options["hotkey"], create=False
        )
        address = str(wallet.hotkey.ss58_address)
        if options["show_hotkey"]:
            self.stdout.write(address)
            return
        message = options["message"]
        if message is None:
            raise CommandError("Pass --message '<the sign-in message>' (or --message - and paste it, then Ctrl-D).")
        if message == "-":
            message = sys.stdin.read().rstrip("\n")
        try:
            fields = parse_message(message)
        except InvalidMessage as exc:
            raise CommandError(f"That is not the portal's sign-in message ({exc}); copy all 11 lines.") from exc
        if fields.address != address:
            raise CommandError(
                f"The message is for hotkey {fields.address}, but wallet {options['wallet_name']!r} holds {address}."
            )
        self.stdout.write("0x" + wallet.hotkey.sign(message.encode()).hex())
