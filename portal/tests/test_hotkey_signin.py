"""The hotkey sign-in API through Django's test client: real sr25519 signatures, the role from the local chain."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bittensor_wallet import Keypair
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from subnet import chain
from subnet.models import ChainNeuron, HotkeyChallenge

pytestmark = pytest.mark.django_db

MINER = Keypair.create_from_uri("//Alice")
VALIDATOR = Keypair.create_from_uri("//Bob")
STRANGER = Keypair.create_from_uri("//Charlie")
CHALLENGE = "/portal/api/hotkey/challenge"
VERIFY = "/portal/api/hotkey/verify"


def post(client: Client, url: str, body: object, headers: dict[str, str] | None = None):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", headers=headers)


def ask(client: Client, keypair: Keypair) -> str:
    answer = post(client, CHALLENGE, {"hotkey": keypair.ss58_address})
    assert answer.status_code == 200, answer.content
    return answer.json()["message"]


def signature(keypair: Keypair, message: str, wrap: str = "") -> str:
    data = f"<{wrap}>{message}</{wrap}>" if wrap else message
    return "0x" + keypair.sign(data.encode()).hex()


@pytest.fixture
def registered() -> None:
    chain.register_neuron(netuid=settings.BITRECS_NETUID, hotkey=MINER.ss58_address, role=ChainNeuron.Role.MINER)
    chain.register_neuron(
        netuid=settings.BITRECS_NETUID, hotkey=VALIDATOR.ss58_address, role=ChainNeuron.Role.VALIDATOR, stake=10.0
    )


def test_the_challenge_is_a_sign_in_message_with_the_commands_that_sign_it(client):
    answer = post(client, CHALLENGE, {"hotkey": MINER.ss58_address})

    body = answer.json()
    challenge = HotkeyChallenge.objects.get()
    assert answer.status_code == 200
    assert body["message"] == challenge.message
    header = "testserver wants you to sign in with your Substrate account:\n"
    assert body["message"].startswith(header + MINER.ss58_address)
    assert f"Nonce: {challenge.nonce}" in body["message"]
    assert f"Chain ID: bittensor:{settings.BITRECS_NETWORK}:{settings.BITRECS_NETUID}" in body["message"]
    assert body["commands"]["btcli"].startswith(
        "btcli wallet sign --wallet.name WALLET --wallet.hotkey HOTKEY --use-hotkey --message '"
    )
    assert ".hotkey.sign(" in body["commands"]["python"]
    assert client.session["portal_hotkey_nonce"] == challenge.nonce


@pytest.mark.parametrize("wrap", ["", "Bytes"])
def test_a_registered_miner_signs_in_with_a_raw_or_wrapped_signature(client, registered, wrap):
    message = ask(client, MINER)

    answer = post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message, wrap)})

    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "hotkey": MINER.ss58_address,
        "role": "miner",
        "uid": 0,
        "detail": "",
        "redirect": "/portal/neuron",
    }
    assert client.session["portal_hotkey"] == MINER.ss58_address
    assert "portal_hotkey_nonce" not in client.session
    page = client.get("/portal/neuron")
    assert page.status_code == 200
    assert page.templates[0].name == "portal/neuron_miner.html"


def test_a_signed_in_hotkey_going_to_the_portal_home_lands_on_its_own_page(client, registered):
    message = ask(client, MINER)
    post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)})

    home = client.get("/portal/")

    assert (home.status_code, home["Location"]) == (302, "/portal/neuron")


def test_the_role_comes_from_the_chain_validator_permit(client, registered):
    message = ask(client, VALIDATOR)

    answer = post(client, VERIFY, {"hotkey": VALIDATOR.ss58_address, "signature": signature(VALIDATOR, message)})

    assert answer.json()["role"] == "validator"
    assert answer.json()["uid"] == 1


def test_an_unregistered_hotkey_signs_in_and_is_told_how_to_register(client, registered):
    message = ask(client, STRANGER)

    answer = post(client, VERIFY, {"hotkey": STRANGER.ss58_address, "signature": signature(STRANGER, message)})

    assert answer.status_code == 200
    assert answer.json()["role"] == "unregistered"
    assert f"python manage.py run_miner --local-chain --netuid {settings.BITRECS_NETUID}" in answer.json()["detail"]
    page = client.get("/portal/neuron")
    assert page.templates[0].name == "portal/neuron_unregistered.html"
    assert "not registered" in page.content.decode()


def test_the_role_is_read_again_on_every_page_load(client, registered):
    message = ask(client, MINER)
    post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)})

    ChainNeuron.objects.filter(hotkey=MINER.ss58_address).delete()  # deregistered
    page = client.get("/portal/neuron")

    assert page.templates[0].name == "portal/neuron_unregistered.html"
    assert client.session["portal_hotkey_role"] == "unregistered"


def test_a_reused_challenge_is_refused(client, registered):
    message = ask(client, MINER)
    body = {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)}
    assert post(client, VERIFY, body).status_code == 200

    again = post(client, VERIFY, body)

    assert again.status_code == 403
    assert again.json()["error"] == "no_challenge"  # the session's nonce was spent with the sign-in


def test_a_signature_replayed_from_another_browser_finds_no_challenge(registered):
    alice_browser, other_browser = Client(), Client()
    message = ask(alice_browser, MINER)
    ask(other_browser, MINER)

    answer = post(other_browser, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)})

    assert answer.status_code == 403
    assert answer.json()["error"] == "bad_signature"  # the other browser's message has another nonce


def test_a_used_challenge_cannot_be_redeemed_by_its_session(client, registered):
    message = ask(client, MINER)
    HotkeyChallenge.objects.update(used_at=timezone.now())

    answer = post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)})

    assert answer.status_code == 403
    assert answer.json() == {
        "error": "challenge_used",
        "detail": "This message was already used to sign in. Ask for a new one.",
    }


def test_an_expired_challenge_is_refused(client, registered):
    message = ask(client, MINER)
    HotkeyChallenge.objects.update(expires_at=timezone.now())

    answer = post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(MINER, message)})

    assert answer.status_code == 403
    assert answer.json()["error"] == "challenge_expired"
    assert "portal_hotkey" not in client.session


def test_another_hotkeys_signature_is_refused(client, registered):
    message = ask(client, MINER)

    answer = post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": signature(STRANGER, message)})

    assert answer.status_code == 403
    assert answer.json()["error"] == "bad_signature"
    assert MINER.ss58_address in answer.json()["detail"]
    assert client.get("/portal/neuron").status_code == 302


def test_claiming_another_hotkey_for_your_challenge_is_refused(client, registered):
    message = ask(client, STRANGER)

    answer = post(client, VERIFY, {"hotkey": VALIDATOR.ss58_address, "signature": signature(STRANGER, message)})

    assert answer.status_code == 403
    assert answer.json()["error"] == "hotkey_mismatch"


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        (CHALLENGE, {"hotkey": "my-miner"}, 403, "invalid_hotkey"),
        (CHALLENGE, {"hotkey": "5" * 48}, 403, "invalid_hotkey"),
        (CHALLENGE, {"hotkey": 12}, 400, "invalid_request"),
        (CHALLENGE, {"hotkey": MINER.ss58_address, "role": "validator"}, 400, "invalid_request"),
        (CHALLENGE, ["hotkey"], 400, "invalid_json"),
        (CHALLENGE, "{not json", 400, "invalid_json"),
        (VERIFY, {"hotkey": MINER.ss58_address}, 400, "invalid_request"),
        (VERIFY, {"hotkey": MINER.ss58_address, "signature": 5}, 400, "invalid_request"),
        (VERIFY, {"hotkey": "nope", "signature": "0x" + "00" * 64}, 403, "invalid_hotkey"),
        (VERIFY, {"hotkey": MINER.ss58_address, "signature": "0x00"}, 403, "invalid_signature_format"),
    ],
)
def test_malformed_bodies_get_a_clear_json_error(client, registered, url, body, status, code):
    ask(client, MINER)

    answer = post(client, url, body)

    assert answer.status_code == status
    assert answer.json()["error"] == code
    assert answer.json()["detail"]


def test_a_long_body_is_refused_with_413(client):
    answer = post(client, CHALLENGE, {"hotkey": "5" * 10_000})

    assert answer.status_code == 413


def test_get_is_not_allowed(client):
    answer = client.get(CHALLENGE)

    assert answer.status_code == 405
    assert answer.json()["error"] == "method_not_allowed"


def test_csrf_is_enforced_and_the_pages_token_passes(registered):
    browser = Client(enforce_csrf_checks=True)

    refused = post(browser, CHALLENGE, {"hotkey": MINER.ss58_address})
    page = browser.get("/portal/hotkey")
    token = page.context["csrf_token"]
    accepted = post(browser, CHALLENGE, {"hotkey": MINER.ss58_address}, headers={"X-CSRFToken": str(token)})
    signed = post(
        browser,
        VERIFY,
        {"hotkey": MINER.ss58_address, "signature": signature(MINER, accepted.json()["message"])},
        headers={"X-CSRFToken": str(token)},
    )

    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    assert accepted.status_code == 200
    assert signed.status_code == 200


def test_the_sign_in_page_shows_the_commands_and_the_login_page_links_to_it(client):
    page = client.get("/portal/hotkey").content.decode()
    login = client.get("/portal/login").content.decode()

    assert "btcli wallet sign" in page
    assert "--use-hotkey" in page
    assert "wallet.hotkey.sign(message).hex()" in page
    assert 'id="hotkey-signature"' in page
    assert 'href="/portal/hotkey"' in login


def test_the_python_one_liner_shown_signs_the_message_in_a_shell(client, registered, tmp_path):
    from bittensor_wallet import Wallet

    wallet = Wallet(name="mywallet", hotkey="myhotkey", path=str(tmp_path / ".bittensor" / "wallets"))
    wallet.create_if_non_existent(coldkey_use_password=False, hotkey_use_password=False, suppress=True)
    chain.register_neuron(
        netuid=settings.BITRECS_NETUID, hotkey=wallet.hotkey.ss58_address, role=ChainNeuron.Role.MINER
    )
    answer = post(client, CHALLENGE, {"hotkey": wallet.hotkey.ss58_address}).json()
    command = answer["commands"]["python"].replace("WALLET", "mywallet").replace("HOTKEY", "myhotkey")
    python_dir = str(Path(sys.executable).parent)

    shell = subprocess.run(  # the command the page shows, run as a person would paste it
        ["/bin/bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "PATH": f"{python_dir}:/usr/bin:/bin"},
        check=False,
    )
    signed = post(client, VERIFY, {"hotkey": wallet.hotkey.ss58_address, "signature": shell.stdout.strip()})

    assert shell.returncode == 0, shell.stderr
    assert signed.status_code == 200, signed.content
    assert signed.json()["role"] == "miner"


def test_the_btcli_command_passes_the_exact_message_through_the_shell(client):
    answer = post(client, CHALLENGE, {"hotkey": MINER.ss58_address}).json()
    prefix = "btcli wallet sign --wallet.name WALLET --wallet.hotkey HOTKEY --use-hotkey --message "
    quoted = answer["commands"]["btcli"].removeprefix(prefix)

    echoed = subprocess.run(  # what btcli would receive as --message's value
        ["/bin/bash", "-c", f"printf %s {quoted}"], capture_output=True, text=True, timeout=30, check=True
    )

    assert answer["commands"]["btcli"].startswith(prefix)
    assert echoed.stdout == answer["message"]


def test_a_new_message_replaces_the_browsers_unused_one(client):
    first = post(client, CHALLENGE, {"hotkey": MINER.ss58_address}).json()["message"]
    second = post(client, CHALLENGE, {"hotkey": MINER.ss58_address}).json()["message"]

    assert list(HotkeyChallenge.objects.values_list("message", flat=True)) == [second]
    assert first != second


def test_sign_in_attempts_are_limited_per_client(client, settings):
    settings.PORTAL_HOTKEY_RATE_LIMIT = "3/min"
    cache.clear()

    answers = [post(client, CHALLENGE, {"hotkey": MINER.ss58_address}) for _ in range(3)]
    verify = post(client, VERIFY, {"hotkey": MINER.ss58_address, "signature": "0x" + "00" * 64})

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert verify.status_code == 429
    assert verify.json()["error"] == "throttled"
    assert int(verify["Retry-After"]) >= 1
    cache.clear()
