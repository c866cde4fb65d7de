"""The miner's axon over loopback: a dendrite round trip with throwaway wallets, and the allow-list."""

import json
import socket
from dataclasses import dataclass

import pytest
import requests
from django.core.management import CommandError, call_command

from subnet.miner.providers import ChatProvider
from subnet.miner.strategies import OFFLINE_MODEL
from subnet.tests.conftest import StubReply
from subnet.tests.test_miner import CONTEXT, GOOD_JSON, QUERY, USER, chat

pytest.importorskip("subnet.protocol", exc_type=ImportError)

import bittensor.utils.networking  # after subnet.protocol, which imports bittensor with Django's loggers kept
from bittensor_wallet import Keypair, Wallet

from subnet.miner.neuron import MinerNeuron
from subnet.protocol import BitrecsRequest, bt, sign_request_bodies
from subnet.types import decode_results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def wallet(tmp_path) -> Wallet:
    wallet = Wallet(name="miner", hotkey="default", path=str(tmp_path / "wallets"))
    wallet.create_coldkey_from_uri("//TestMinerCold", use_password=False, overwrite=True, suppress=True)
    wallet.create_hotkey_from_uri("//TestMinerHot", use_password=False, overwrite=True, suppress=True)
    return wallet


@pytest.fixture
def validator_key(monkeypatch) -> Keypair:
    # Offline, Dendrite() would look its external IP up on the internet.
    monkeypatch.setattr(bittensor.utils.networking, "get_external_ip", lambda: "127.0.0.1")
    return Keypair.create_from_uri("//TestValidator")


@pytest.fixture
def start_miner(wallet, validator_key):
    neurons: list[MinerNeuron] = []

    def start(*, provider: ChatProvider | None = None, allowed: frozenset[str] | None = None) -> MinerNeuron:
        allowed_hotkeys = frozenset({validator_key.ss58_address}) if allowed is None else allowed
        neuron = MinerNeuron(
            wallet=wallet, provider=provider, allowed_hotkeys=lambda: allowed_hotkeys, uid=7, port=free_port()
        )
        neurons.append(neuron.start())
        return neuron

    yield start
    for neuron in neurons:
        neuron.stop()


def request(num_results: int = 3) -> BitrecsRequest:
    return BitrecsRequest(
        created_at="2025-06-28T20:00:00",
        user=USER,
        num_results=num_results,
        query=QUERY,
        context=CONTEXT,
        site_key="shop.example.com",
        results=[],
        models_used=[],
        miner_uid="",
        miner_hotkey="",
    )


@dataclass(frozen=True)
class Reply:
    status_code: int | None
    status_message: str | None
    results: list[str]
    synapse: BitrecsRequest


def query(neuron: MinerNeuron, key: Keypair, synapse: BitrecsRequest) -> Reply:
    [response] = bt.Dendrite(wallet=key).query(axons=[neuron.axon.info()], synapse=synapse, timeout=5)
    assert isinstance(response, BitrecsRequest)
    assert response.dendrite is not None
    return Reply(response.dendrite.status_code, response.dendrite.status_message, response.results or [], response)


def test_round_trip_over_loopback_returns_the_miners_llm_results(start_miner, validator_key, wallet, stub_server):
    # given
    stub_server.replies = [StubReply(body=chat(GOOD_JSON))]
    provider = ChatProvider(name="local", base_url=stub_server.url, model="test-model", timeout=2.0)
    neuron = start_miner(provider=provider)

    # when
    response = query(neuron, validator_key, request())

    # then
    assert response.status_code == 200
    assert [item["sku"] for item in decode_results(results=response.results)] == [
        "WSH11-28-Blue",
        "24-WG087",
        "24-UG06",
    ]
    assert (
        response.results[2] == '{"sku":"24-UG06","name":"Affirm Water Bottle","price":"7","reason":"Low cost add on"}'
    )
    assert response.synapse.models_used == ["test-model"]
    assert response.synapse.miner_uid == "7"
    assert response.synapse.miner_hotkey == wallet.hotkey.ss58_address
    assert (response.synapse.query, response.synapse.num_results, response.synapse.site_key) == (
        QUERY,
        3,
        "shop.example.com",
    )
    assert (response.synapse.user, response.synapse.context) == ("", "[]")
    assert json.loads(stub_server.received[0].body)["model"] == "test-model"


def test_round_trip_with_the_offline_provider(start_miner, validator_key):
    neuron = start_miner(provider=None)

    response = query(neuron, validator_key, request(num_results=5))

    assert response.status_code == 200
    assert [item["sku"] for item in decode_results(results=response.results)] == [
        "24-UG06",
        "24-MB02",
        "WSH11-28-Blue",
        "WJ09-S-Blue",
        "WH05-XS-Orange",
    ]
    assert response.synapse.models_used == [OFFLINE_MODEL]


def test_hotkey_outside_the_allow_list_is_refused(start_miner, validator_key):
    # given: only the validator is allowed
    neuron = start_miner()
    stranger = Keypair.create_from_uri("//TestStranger")

    # when
    response = query(neuron, stranger, request())

    # then
    assert response.status_code == 403
    assert response.status_message == f"Forbidden. Key is blacklisted: hotkey {stranger.ss58_address} is not allowed."
    assert response.results == []


def test_allow_list_is_read_on_every_request(wallet, validator_key):
    allowed: set[str] = set()
    neuron = MinerNeuron(wallet=wallet, provider=None, allowed_hotkeys=lambda: allowed, port=free_port()).start()
    try:
        assert query(neuron, validator_key, request()).status_code == 403
        allowed.add(validator_key.ss58_address)
        assert query(neuron, validator_key, request()).status_code == 200
    finally:
        neuron.stop()


def test_local_miner_listens_on_loopback_only(wallet):
    neuron = MinerNeuron(wallet=wallet, provider=None, allowed_hotkeys=frozenset, port=free_port())

    assert neuron.axon.fast_config.host == "127.0.0.1"
    assert neuron.axon.external_ip == "127.0.0.1"


def test_run_miner_refuses_to_start_without_an_allow_list(tmp_path):
    with pytest.raises(CommandError, match="Pass --allow-hotkey SS58"):
        call_command("run_miner", "--provider", "offline", "--wallet-path", str(tmp_path))


def test_run_miner_refuses_a_missing_wallet_and_a_missing_key(tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="No hotkey 'default' in wallet 'miner'"):
        call_command("run_miner", "--provider", "offline", "--wallet-path", str(tmp_path), "--allow-any-hotkey")
    monkeypatch.delenv("BITRECS_LLM_OPENAI_API_KEY", raising=False)
    with pytest.raises(CommandError, match="BITRECS_LLM_OPENAI_API_KEY is not set"):
        call_command("run_miner", "--provider", "openai", "--wallet-path", str(tmp_path), "--allow-any-hotkey")


# bittensor 10.5.0's axon answers a body-hash mismatch with 500 (its ValueError is not mapped to a 4xx).
@pytest.mark.parametrize(("signed_bodies", "tampered_status"), [(True, 500), (False, 200)])
def test_a_body_altered_in_transit_is_refused_only_when_the_signature_covers_it(
    start_miner, validator_key, signed_bodies, tampered_status
):
    # given: requests prepared and signed by the validator's dendrite, as it would send them (each its own nonce)
    sign_request_bodies(signed_bodies)
    neuron = start_miner()
    dendrite = bt.Dendrite(wallet=validator_key)
    url = f"http://127.0.0.1:{neuron.port}/BitrecsRequest"

    def send(*, query: str | None = None) -> int:
        synapse = dendrite.preprocess_synapse_for_request(neuron.axon.info(), request(), 5)
        body = synapse.model_dump()
        if query is not None:
            body["query"] = query
        return requests.post(url, headers=synapse.to_headers(), json=body, timeout=10).status_code

    # when: one arrives with its query changed on the way, one as sent
    tampered = send(query="OTHER-SKU")
    intact = send()

    # then: the public synapse (no hashed field) cannot tell them apart; ours on the local chain can
    assert (intact, tampered) == (200, tampered_status)
