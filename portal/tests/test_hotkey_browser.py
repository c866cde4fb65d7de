"""A miner of the local chain signs in with its hotkey in real Chromium and sees its page with charts."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from bittensor_wallet import Keypair
from django.conf import settings
from django.utils import timezone

from portal.tests.conftest import DESKTOP, PHONE
from subnet import chain
from subnet.models import ChainNeuron, MinerScore, ScoreRound

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

MINER = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())  # a fresh hotkey, made for this test
OTHER = Keypair.create_from_uri("//Eve")
# Screenshots for people to look at (BITRECS_SCREENSHOTS, default the temp directory: /tmp/h-hotkey-*.png).
SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))
VALIDATOR_HOTKEY = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def register_with_history() -> ChainNeuron:
    netuid = settings.BITRECS_NETUID
    miner = chain.register_neuron(netuid=netuid, hotkey=MINER.ss58_address, role=ChainNeuron.Role.MINER)
    chain.register_neuron(netuid=netuid, hotkey=OTHER.ss58_address, role=ChainNeuron.Role.MINER)
    chain.register_neuron(netuid=netuid, hotkey=VALIDATOR_HOTKEY, role=ChainNeuron.Role.VALIDATOR, stake=1.0)
    now = timezone.now()
    for step, (score, rank) in enumerate([(0.1, 2), (0.2, 2), (0.35, 1)]):
        ScoreRound.objects.create(
            netuid=netuid,
            validator_hotkey=VALIDATOR_HOTKEY,
            miner_uid=miner.uid,
            miner_hotkey=miner.hotkey,
            score=score,
            weight=score * 2,
            rank=rank,
            problems={"too_slow": 1} if step == 0 else {},
            latency_p50_ms=800 - 100 * step,
            latency_p99_ms=2400 - 300 * step,
            recorded_at=now - timedelta(minutes=30 - 10 * step),
        )
    MinerScore.objects.create(
        netuid=netuid,
        validator_hotkey=VALIDATOR_HOTKEY,
        miner_uid=miner.uid,
        miner_hotkey=miner.hotkey,
        score=0.35,
        answers=12,
        valid_answers=11,
    )
    return miner


def sign_in_on(page, keypair: Keypair) -> None:
    page.fill("#hotkey-address", keypair.ss58_address)
    page.click("#hotkey-challenge-form button[type=submit]")
    page.wait_for_selector("#hotkey-step-sign:not([hidden])")
    message = page.locator("#hotkey-message").text_content()
    assert message is not None and message.startswith(page.url.split("/")[2] + " wants you to sign in")
    page.fill("#hotkey-signature", "0x" + keypair.sign(message.encode()).hex())
    page.click("#hotkey-verify-form button[type=submit]")


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_registered_miner_signs_in_with_a_real_signature_and_sees_charts(open_page, viewport, name):
    miner = register_with_history()
    page = open_page("/portal/login", viewport=viewport)
    page.click("text=Sign in with your hotkey")
    page.wait_for_url("**/portal/hotkey")
    page.fill("#hotkey-address", MINER.ss58_address)
    page.click("#hotkey-challenge-form button[type=submit]")
    page.wait_for_selector("#hotkey-step-sign:not([hidden])")
    assert "--use-hotkey" in (page.locator("#hotkey-btcli").text_content() or "")
    page.screenshot(path=SHOTS / f"h-hotkey-signin-{name}.png", full_page=True)

    message = page.locator("#hotkey-message").text_content() or ""
    page.fill("#hotkey-signature", "0x" + MINER.sign(f"<Bytes>{message}</Bytes>".encode()).hex())
    page.click("#hotkey-verify-form button[type=submit]")
    page.wait_for_url("**/portal/neuron")
    page.wait_for_selector("canvas[data-chart='chart-score'][data-chart-drawn]")
    page.wait_for_selector("canvas[data-chart='chart-latency'][data-chart-drawn]")
    page.screenshot(path=SHOTS / f"h-hotkey-miner-{name}.png", full_page=True)

    assert page.locator("h1").inner_text() == f"Miner uid {miner.uid}"
    assert page.locator("#miner-answers").inner_text() == "12"
    assert page.locator("canvas[data-chart='chart-score']").get_attribute("data-chart-drawn") == "1"
    assert page.locator("#miner-rank-changes tbody tr").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.errors == []


def test_a_wrong_signature_is_told_and_another_hotkeys_page_is_forbidden(open_page, live_server):
    register_with_history()
    page = open_page("/portal/hotkey", viewport=PHONE)

    sign_in_on(page, OTHER)  # Eve signs in as herself ...
    page.wait_for_url("**/portal/neuron")
    response = page.goto(f"{live_server.url}/portal/neuron/{MINER.ss58_address}")  # ... and tries Alice's page

    assert response is not None and response.status == 403
    page.goto(f"{live_server.url}/portal/hotkey")
    page.fill("#hotkey-address", MINER.ss58_address)
    page.click("#hotkey-challenge-form button[type=submit]")
    page.wait_for_selector("#hotkey-step-sign:not([hidden])")
    message = page.locator("#hotkey-message").text_content() or ""
    page.fill("#hotkey-signature", "0x" + OTHER.sign(message.encode()).hex())  # Eve's signature for Alice's hotkey
    page.click("#hotkey-verify-form button[type=submit]")
    page.wait_for_selector("#hotkey-status.error")

    assert page.locator("#hotkey-status").inner_text().startswith("The signature does not match this message")
    assert page.errors == []


def test_the_leaderboard_fits_a_phone(open_page):
    register_with_history()

    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = open_page("/portal/leaderboard", viewport=viewport)
        page.screenshot(path=SHOTS / f"h-hotkey-leaderboard-{name}.png", full_page=True)

        assert page.locator("#leaderboard tbody tr").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert page.errors == []


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_validator_signs_in_and_sees_its_weights_over_time(open_page, viewport, name):
    miner = register_with_history()  # rounds of VALIDATOR_HOTKEY's weight settings
    validator = Keypair.create_from_uri("//Ferdie")
    netuid = settings.BITRECS_NETUID
    chain.register_neuron(netuid=netuid, hotkey=validator.ss58_address, role=ChainNeuron.Role.VALIDATOR, stake=2.0)
    chain.serve_axon(netuid=netuid, hotkey=validator.ss58_address, ip="127.0.0.1", port=9499)  # nothing listens
    ScoreRound.objects.filter(validator_hotkey=VALIDATOR_HOTKEY).update(validator_hotkey=validator.ss58_address)
    page = open_page("/portal/hotkey", viewport=viewport)

    sign_in_on(page, validator)
    page.wait_for_url("**/portal/neuron")
    page.wait_for_selector("canvas[data-chart='chart-weights'][data-chart-drawn]")
    page.screenshot(path=SHOTS / f"h-hotkey-validator-test-{name}.png", full_page=True)

    assert page.locator("h1").inner_text() == f"Validator uid {miner.uid + 3}"
    assert page.locator("#validator-health").inner_text() == "down"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.errors == []


def test_an_unregistered_hotkey_is_told_how_to_register(open_page):
    register_with_history()
    stranger = Keypair.create_from_uri("//Ferdie//stranger")
    page = open_page("/portal/hotkey", viewport=PHONE)

    sign_in_on(page, stranger)
    page.wait_for_url("**/portal/neuron")
    page.screenshot(path=SHOTS / "h-hotkey-unregistered-phone.png", full_page=True)

    assert "python manage.py run_miner --local-chain" in page.locator("pre").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.errors == []
