"""The network pages through Django's test client: whose page is whose, the leaderboard in HTML and JSON."""

import json

import pytest
from bittensor_wallet import Keypair
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from subnet import chain
from subnet.models import ChainNeuron, MinerScore, ScoreRound

pytestmark = pytest.mark.django_db

MINER = Keypair.create_from_uri("//Alice")
OTHER_MINER = Keypair.create_from_uri("//Dave")
VALIDATOR = Keypair.create_from_uri("//Bob")


def sign_in(client: Client, keypair: Keypair) -> dict:
    challenge = client.post(
        "/portal/api/hotkey/challenge", json.dumps({"hotkey": keypair.ss58_address}), content_type="application/json"
    ).json()
    signature = "0x" + keypair.sign(challenge["message"].encode()).hex()
    answer = client.post(
        "/portal/api/hotkey/verify",
        json.dumps({"hotkey": keypair.ss58_address, "signature": signature}),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


@pytest.fixture
def neurons() -> dict[str, ChainNeuron]:
    netuid = settings.BITRECS_NETUID
    found = {
        "miner": chain.register_neuron(netuid=netuid, hotkey=MINER.ss58_address, role=ChainNeuron.Role.MINER),
        "other": chain.register_neuron(netuid=netuid, hotkey=OTHER_MINER.ss58_address, role=ChainNeuron.Role.MINER),
        "validator": chain.register_neuron(
            netuid=netuid, hotkey=VALIDATOR.ss58_address, role=ChainNeuron.Role.VALIDATOR, stake=5.0
        ),
    }
    chain.serve_axon(netuid=netuid, hotkey=VALIDATOR.ss58_address, ip="127.0.0.1", port=9)  # nothing listens
    for uid_key, score, rank in (("miner", 0.25, 2), ("other", 0.5, 1)):
        neuron = found[uid_key]
        MinerScore.objects.create(
            netuid=netuid,
            validator_hotkey=VALIDATOR.ss58_address,
            miner_uid=neuron.uid,
            miner_hotkey=neuron.hotkey,
            score=score,
            answers=4,
            valid_answers=3,
        )
        ScoreRound.objects.create(
            netuid=netuid,
            validator_hotkey=VALIDATOR.ss58_address,
            miner_uid=neuron.uid,
            miner_hotkey=neuron.hotkey,
            score=score,
            weight=score / 0.75,
            rank=rank,
            problems={"too_slow": 1},
        )
    return found


def test_a_visitor_is_sent_to_the_hotkey_sign_in(client):
    answer = client.get("/portal/neuron")

    assert answer.status_code == 302
    assert answer["Location"] == "/portal/hotkey?next=%2Fportal%2Fneuron"


def test_a_merchant_session_is_not_a_hotkey_session(client, neurons):
    merchant = get_user_model().objects.create_user("m@shop.example", password="x")
    client.force_login(merchant)
    session = client.session
    session["portal_hotkey"] = MINER.ss58_address  # a forged session value without the hotkey's account
    session.save()

    assert client.get("/portal/neuron").status_code == 302


def test_a_miner_sees_their_own_figures(client, neurons):
    sign_in(client, MINER)

    page = client.get("/portal/neuron")
    html = page.content.decode()

    assert page.status_code == 200
    assert f"Miner uid {neurons['miner'].uid}" in html
    assert '<p class="kpi" id="miner-answers">4</p>' in html
    assert '<p class="kpi" id="miner-validity">75 %</p>' in html
    assert "<td><code>too_slow</code></td><td>validator</td><td>1</td>" in html
    assert 'data-chart="chart-score"' in html
    assert page.context["report"].charts["score"]["datasets"][0]["data"] == [0.25]


def test_another_hotkeys_private_page_is_forbidden_and_your_own_redirects(client, neurons):
    sign_in(client, MINER)

    other = client.get(f"/portal/neuron/{OTHER_MINER.ss58_address}")
    mine = client.get(f"/portal/neuron/{MINER.ss58_address}")
    anonymous = Client().get(f"/portal/neuron/{MINER.ss58_address}")

    assert other.status_code == 403
    assert mine.status_code == 302
    assert mine["Location"] == "/portal/neuron"
    assert anonymous.status_code == 403


def test_a_validator_sees_its_page_with_the_api_down(client, neurons):
    body = sign_in(client, VALIDATOR)

    page = client.get("/portal/neuron")
    html = page.content.decode()

    assert body["role"] == "validator"
    assert page.context["health"].up is False
    assert '<span class="badge bad">down</span>' in html
    assert "http://127.0.0.1:9/ping" in html
    weights = page.context["report"].charts["weights"]["datasets"]
    assert [dataset["label"] for dataset in weights] == [f"uid {neurons['miner'].uid}", f"uid {neurons['other'].uid}"]
    assert 'data-chart="chart-weights"' in html


def test_the_leaderboard_lists_miners_by_score_with_penalties(client, neurons):
    page = client.get("/portal/leaderboard")
    html = page.content.decode()

    rows = page.context["rows"]
    assert page.status_code == 200
    assert [row.neuron.hotkey for row in rows] == [OTHER_MINER.ss58_address, MINER.ss58_address, VALIDATOR.ss58_address]
    assert html.count('<span class="badge bad">too_slow: 1</span>') == 2
    assert "Sign in with your hotkey" in html


def test_the_leaderboard_as_json(client, neurons):
    by_path = client.get("/portal/leaderboard.json")
    by_format = client.get("/portal/leaderboard?format=json")
    by_accept = client.get("/portal/leaderboard", HTTP_ACCEPT="application/json")

    body = by_path.json()
    assert by_format.json() == body
    assert by_accept.json() == body
    assert (body["network"], body["netuid"]) == ("local", settings.BITRECS_NETUID)
    first = body["neurons"][0]
    assert first == {
        "position": 1,
        "uid": neurons["other"].uid,
        "hotkey": OTHER_MINER.ss58_address,
        "coldkey": "",
        "role": "miner",
        "validator_permit": False,
        "stake": 0.0,
        "vtrust": None,
        "consensus": None,
        "incentive": None,
        "dividends": None,
        "emission": None,
        "updated": None,
        "score": 0.5,
        "weight": None,
        "answers": 4,
        "valid_answers": 3,
        "validity": 0.75,
        "penalties": {"too_slow": 1},
        "weights_set_at": None,
    }


def test_an_unreachable_chain_is_a_503_page_and_json(client, settings, monkeypatch):
    from subnet.protocol import bt

    def unreachable(network: str) -> None:
        raise ConnectionError("no route")

    settings.BITRECS_NETWORK = "finney"
    monkeypatch.setattr(bt, "Subtensor", unreachable)
    cache.clear()  # no metagraph remembered from another test

    page = client.get("/portal/leaderboard")
    data = client.get("/portal/leaderboard.json")

    assert page.status_code == 503
    assert "The chain cannot be read just now" in page.content.decode()
    assert data.status_code == 503
    assert data.json()["error"] == "chain_unavailable"


def test_the_navigation_has_the_network_pages(client):
    html = client.get("/portal/leaderboard").content.decode()

    assert '<a href="/portal/leaderboard" aria-current="page">Leaderboard</a>' in html
    assert '<a href="/portal/neuron">My hotkey</a>' in html
