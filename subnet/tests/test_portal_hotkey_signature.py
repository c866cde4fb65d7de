"""`manage.py portal_hotkey_signature`: a local wallet signs the portal's message, and the portal accepts it."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from subnet import chain
from subnet.management.commands.run_miner import load_wallet
from subnet.models import ChainNeuron

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(tmp_path, settings):
    """A miner's local wallet, created as `run_miner --create-wallet` does, and registered on the local chain."""
    created = load_wallet(path=str(tmp_path), name="miner1", hotkey="default", create=True)
    chain.register_neuron(
        netuid=settings.BITRECS_NETUID, hotkey=created.hotkey.ss58_address, role=ChainNeuron.Role.MINER
    )
    return created


def run(tmp_path, *args: str, stdin: str = "", monkeypatch=None) -> str:
    out = io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("portal_hotkey_signature", "--wallet-path", str(tmp_path), *args, stdout=out)
    return out.getvalue().strip()


def test_a_local_miner_signs_in_with_the_commands_signature(tmp_path, wallet, monkeypatch):
    client = Client()
    hotkey = run(tmp_path, "--show-hotkey")
    message = client.post(
        "/portal/api/hotkey/challenge", json.dumps({"hotkey": hotkey}), content_type="application/json"
    ).json()["message"]

    from_argument = run(tmp_path, "--message", message)
    from_stdin = run(tmp_path, "--message", "-", stdin=message + "\n", monkeypatch=monkeypatch)
    answer = client.post(
        "/portal/api/hotkey/verify",
        json.dumps({"hotkey": hotkey, "signature": from_stdin}),
        content_type="application/json",
    )

    assert hotkey == wallet.hotkey.ss58_address
    assert len(from_argument) == 130 and from_argument.startswith("0x")
    assert answer.status_code == 200
    assert answer.json()["role"] == "miner"


def test_a_message_for_another_hotkey_or_no_message_is_refused(tmp_path, wallet):
    client = Client()
    other = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    message = client.post(
        "/portal/api/hotkey/challenge", json.dumps({"hotkey": other}), content_type="application/json"
    ).json()["message"]

    with pytest.raises(CommandError, match=f"The message is for hotkey {other}, but wallet 'miner1' holds"):
        run(tmp_path, "--message", message)
    with pytest.raises(CommandError, match="not the portal's sign-in message"):
        run(tmp_path, "--message", "hello")
    with pytest.raises(CommandError, match="Pass --message"):
        run(tmp_path)
