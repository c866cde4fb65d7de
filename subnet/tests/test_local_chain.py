"""The local chain in the database, and the validator → dendrite → miner axons path over loopback."""

import socket
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory
from merchants.tests.factories import StoreFactory
from recommendations.models import RecommendationList
from subnet import chain
from subnet.client import RecAnswer, ValidatorClient
from subnet.models import ChainNeuron, MinerScore, NetworkRequest
from subnet.registry import ValidatorEndpoint, choose_validator
from subnet.tests.conftest import API_KEY, RFC_PRIVATE_KEY_HEX, miner_synapse

pytest.importorskip("subnet.protocol", exc_type=ImportError)

import bittensor.utils.networking  # after subnet.protocol, which imports bittensor with Django's loggers kept
from bittensor_wallet import Keypair, Wallet

from subnet.miner.neuron import LOOPBACK, MinerNeuron
from subnet.protocol import BitrecsRequest, bt
from subnet.tasks import ask_network_for_product_task
from subnet.validator.app import ValidatorServer
from subnet.validator.dendrite_pool import DendriteMinerPool

NETUID = 7
MINER = ChainNeuron.Role.MINER
VALIDATOR = ChainNeuron.Role.VALIDATOR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------- chain services


@pytest.mark.django_db
def test_register_gives_the_next_free_uid_and_is_idempotent_by_hotkey():
    first = chain.register_neuron(netuid=NETUID, hotkey="hk-a", coldkey="ck-a", role=MINER)
    second = chain.register_neuron(netuid=NETUID, hotkey="hk-b", role=VALIDATOR, stake=1000.0)
    again = chain.register_neuron(netuid=NETUID, hotkey="hk-a", role=MINER)
    other_net = chain.register_neuron(netuid=NETUID + 1, hotkey="hk-a", role=MINER)

    assert (first.uid, second.uid, again.uid, other_net.uid) == (0, 1, 0, 0)
    assert again.coldkey == "ck-a"
    assert second.stake == 1000.0
    assert ChainNeuron.objects.filter(netuid=NETUID).count() == 2
    assert chain.is_registered(netuid=NETUID, hotkey="hk-b")
    assert not chain.is_registered(netuid=NETUID, hotkey="hk-c")
    assert not chain.is_registered(netuid=NETUID + 1, hotkey="hk-b")


@pytest.mark.django_db
def test_a_freed_uid_is_reused():
    for hotkey in ("hk-a", "hk-b", "hk-c"):
        chain.register_neuron(netuid=NETUID, hotkey=hotkey, role=MINER)
    ChainNeuron.objects.filter(hotkey="hk-b").delete()

    assert chain.register_neuron(netuid=NETUID, hotkey="hk-d", role=MINER).uid == 1


@pytest.mark.django_db
def test_list_miners_lists_serving_miners_by_uid_and_validators_separately():
    chain.register_neuron(netuid=NETUID, hotkey="validator", role=VALIDATOR)
    chain.register_neuron(netuid=NETUID, hotkey="no-axon", role=MINER)
    chain.register_neuron(netuid=NETUID, hotkey="miner-b", role=MINER)
    chain.register_neuron(netuid=NETUID, hotkey="miner-a", role=MINER)
    chain.serve_axon(netuid=NETUID, hotkey="miner-a", ip=LOOPBACK, port=9001)
    chain.serve_axon(netuid=NETUID, hotkey="miner-b", ip=LOOPBACK, port=9002)
    chain.serve_axon(netuid=NETUID, hotkey="validator", ip=LOOPBACK, port=9003)

    assert [(m.uid, m.hotkey, m.axon_port) for m in chain.list_miners(netuid=NETUID)] == [
        (2, "miner-b", 9002),
        (3, "miner-a", 9001),
    ]
    assert chain.list_validator_hotkeys(netuid=NETUID) == frozenset({"validator"})
    with pytest.raises(chain.NotRegistered):
        chain.serve_axon(netuid=NETUID, hotkey="stranger", ip=LOOPBACK, port=9004)


@pytest.mark.django_db
def test_set_weights_normalises_and_replaces_the_previous_set():
    chain.register_neuron(netuid=NETUID, hotkey="validator", role=VALIDATOR)

    stored = chain.set_weights(netuid=NETUID, validator_hotkey="validator", weights={1: 1.0, 2: 3.0, 3: 0.0})
    assert stored == {1: 0.25, 2: 0.75}
    assert chain.get_weights(netuid=NETUID, validator_hotkey="validator") == {1: 0.25, 2: 0.75}

    chain.set_weights(netuid=NETUID, validator_hotkey="validator", weights={4: 2.0})
    assert chain.get_weights(netuid=NETUID, validator_hotkey="validator") == {4: 1.0}
    assert chain.get_weights(netuid=NETUID, validator_hotkey="other") == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hotkey", "weights", "error"),
    [
        ("validator", {1: 0.0}, ValueError),
        ("validator", {1: -1.0, 2: 2.0}, ValueError),
        ("validator", {1: float("nan")}, ValueError),
        ("miner", {1: 1.0}, chain.NotRegistered),
        ("stranger", {1: 1.0}, chain.NotRegistered),
    ],
)
def test_set_weights_refuses_bad_weights_and_non_validators(hotkey, weights, error):
    chain.register_neuron(netuid=NETUID, hotkey="validator", role=VALIDATOR)
    chain.register_neuron(netuid=NETUID, hotkey="miner", role=MINER)

    with pytest.raises(error):
        chain.set_weights(netuid=NETUID, validator_hotkey=hotkey, weights=weights)


# ------------------------------------------------------------------------------- miners and validator on loopback


@pytest.fixture
def validator_key(monkeypatch) -> Keypair:
    # Offline, Dendrite() would look its external IP up on the internet (the pool avoids it by itself).
    monkeypatch.setattr(bittensor.utils.networking, "get_external_ip", lambda: "127.0.0.1")
    return Keypair.create_from_uri("//TestChainValidator")


@pytest.fixture
def local_network(tmp_path, validator_key):
    """Three offline miners registered on the local chain, serving their axons; the validator registered."""
    chain.register_neuron(netuid=NETUID, hotkey=validator_key.ss58_address, role=VALIDATOR, stake=1000.0)
    neurons: list[MinerNeuron] = []
    try:
        for index in range(3):
            wallet = Wallet(name=f"miner{index}", hotkey="default", path=str(tmp_path / "wallets"))
            wallet.create_coldkey_from_uri(f"//ChainMinerCold{index}", use_password=False, suppress=True)
            wallet.create_hotkey_from_uri(f"//ChainMinerHot{index}", use_password=False, suppress=True)
            registered = chain.register_neuron(
                netuid=NETUID,
                hotkey=wallet.hotkey.ss58_address,
                coldkey=wallet.coldkeypub.ss58_address,
                role=MINER,
            )
            neuron = MinerNeuron(
                wallet=wallet,
                provider=None,
                allowed_hotkeys=chain.validator_allow_list(netuid=NETUID),
                uid=registered.uid,
                port=free_port(),
            ).start()
            neurons.append(neuron)
            chain.serve_axon(netuid=NETUID, hotkey=neuron.hotkey, ip=LOOPBACK, port=neuron.port)
        yield neurons
    finally:
        for neuron in neurons:
            neuron.stop()


@pytest.mark.django_db(transaction=True)
def test_pool_gets_an_answer_from_every_serving_miner_and_reports_a_dead_one(local_network, validator_key, luma_body):
    # given: a fourth miner registered on a port nobody listens on
    dead = chain.register_neuron(netuid=NETUID, hotkey="5DeadMinerHotkey", role=MINER)
    chain.serve_axon(netuid=NETUID, hotkey=dead.hotkey, ip=LOOPBACK, port=free_port())
    pool = DendriteMinerPool(wallet=validator_key, netuid=NETUID, timeout=3)

    # when
    answers = pool.query(miner_synapse(luma_body))

    # then: every miner asked is reported, the dead one as failed with nothing to score
    [failed] = [answer for answer in answers if answer.error]
    assert (failed.uid, failed.hotkey, failed.results, failed.error) == (dead.uid, dead.hotkey, (), "http_503")
    answered = [answer for answer in answers if not answer.error]
    assert sorted((answer.uid, answer.hotkey) for answer in answered) == sorted(
        (neuron.uid, neuron.hotkey) for neuron in local_network
    )
    for answer in answered:
        assert len(answer.results) == 3
        assert answer.models_used == ("bitrecs/offline-text-similarity",)
        assert answer.latency_seconds > 0
        assert answer.query == luma_body["query"]


@pytest.mark.django_db(transaction=True)
def test_pool_with_no_miners_returns_no_answers(validator_key, luma_body):
    assert DendriteMinerPool(wallet=validator_key, netuid=NETUID).query(miner_synapse(luma_body)) == []


@pytest.mark.django_db(transaction=True)
def test_gateway_rec_goes_through_the_validator_dendrite_and_a_registered_miner(
    settings, local_network, validator_key, luma_body, start_validator
):
    # given
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    validator = start_validator(miner_pool=DendriteMinerPool(wallet=validator_key, netuid=NETUID, timeout=3))
    client = ValidatorClient(validator.url, API_KEY, network="test")

    # when
    answer = client.recommend(
        query=luma_body["query"],
        context=luma_body["context"],
        site_key="shop.example.com",
        num_results=3,
        created_at="2025-06-28T20:00:00",
    )

    # then
    assert isinstance(answer, RecAnswer)
    assert answer.status_code == "200"
    assert len(answer.results) == 3
    assert len({item.sku for item in answer.results}) == 3
    assert answer.miner_hotkey in {neuron.hotkey for neuron in local_network}
    winner = next(neuron for neuron in local_network if neuron.hotkey == answer.miner_hotkey)
    assert answer.miner_uid == str(winner.uid)
    assert answer.models_used == ("bitrecs/offline-text-similarity",)


def call(key: Keypair, axons: list, request: BitrecsRequest) -> list[tuple[int | None, list]]:
    """Query the axons with a dendrite signed by `key`; returns each (status code, results)."""
    replies = []
    for response in bt.Dendrite(wallet=key).query(axons=axons, synapse=request, timeout=3):
        assert isinstance(response, BitrecsRequest) and response.dendrite is not None
        replies.append((response.dendrite.status_code, response.results or []))
    return replies


@pytest.mark.django_db(transaction=True)
def test_unregistered_dendrite_hotkey_is_refused_by_the_miners(local_network, validator_key, luma_body):
    stranger = Keypair.create_from_uri("//TestChainStranger")
    axons = [neuron.axon.info() for neuron in local_network]

    refused = call(stranger, axons, miner_synapse(luma_body))
    [(allowed_status, allowed_results)] = call(validator_key, axons[:1], miner_synapse(luma_body))

    assert refused == [(403, []), (403, []), (403, [])]
    assert (allowed_status, len(allowed_results)) == (200, 3)


@pytest.mark.django_db(transaction=True)
def test_a_validator_registered_later_is_allowed_on_its_next_call(local_network, luma_body):
    newcomer = Keypair.create_from_uri("//TestChainNewcomer")
    axon = local_network[0].axon.info()

    [(before, _)] = call(newcomer, [axon], miner_synapse(luma_body))
    chain.register_neuron(netuid=NETUID, hotkey=newcomer.ss58_address, role=VALIDATOR)
    [(after, _)] = call(newcomer, [axon], miner_synapse(luma_body))

    assert (before, after) == (403, 200)


# ------------------------------------------------------------------------------------------------- commands


@pytest.mark.django_db(transaction=True)
def test_run_validator_local_chain_registers_and_queries_the_chain_miners(
    monkeypatch, settings, tmp_path, local_network, luma_body
):
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    # the gateway finds validators on the local chain, and asks with the validator's key
    settings.BITRECS_NETWORK, settings.BITRECS_NETUID, settings.BITRECS_VALIDATOR_URL = "local", NETUID, ""
    settings.BITRECS_API_KEY, settings.BITRECS_ASK_NUM_RESULTS = "run-key", 3
    store = StoreFactory.create(site_key="chain-shop")
    for index, name in enumerate(["Blue Tee", "Red Tee", "Cap", "Jeans", "Mug", "Lamp", "Hose", "Pen"]):
        ProductFactory.create(store=store, external_id=f"p{index}", sku=f"SKU-{index}", title=name, price=Decimal("9"))
    query = Product.objects.get(store=store, sku="SKU-0")
    answers: list[object] = []
    chosen: list[ValidatorEndpoint | None] = []

    def serve_briefly(server):
        server.start()
        try:
            client = ValidatorClient(server.url, "run-key", network="test")
            answers.append(
                client.recommend(
                    query=luma_body["query"],
                    context=luma_body["context"],
                    site_key="s1",
                    num_results=2,
                    created_at="2025-06-28T20:00:00",
                )
            )
            chosen.append(choose_validator())
            ask_network_for_product_task.delay(store.id, query.id)  # eager: gateway -> validator -> miners
        finally:
            server.stop()

    monkeypatch.setattr(ValidatorServer, "serve_forever", serve_briefly)
    # The validator must verify with the gateway key the client signs with; a static key avoids the web fetch.
    from subnet.signing import load_private_key
    from subnet.validator import public_key as public_key_module

    key = load_private_key(hex_key=RFC_PRIVATE_KEY_HEX).public_key()
    monkeypatch.setattr(public_key_module.GatewayPublicKey, "get", lambda self: key)
    out = StringIO()

    call_command(
        "run_validator",
        "--port",
        "0",
        "--api-key",
        "run-key",
        "--local-chain",
        "--netuid",
        str(NETUID),
        "--wallet-path",
        str(tmp_path / "wallets"),
        "--create-wallet",
        "--weights-interval",
        "0.001",
        stdout=out,
    )

    assert f"miners of local chain netuid {NETUID}" in out.getvalue()
    validator_hotkey = Wallet(name="validator", hotkey="default", path=str(tmp_path / "wallets")).hotkey.ss58_address
    assert chain.list_validator_hotkeys(netuid=NETUID) >= {validator_hotkey}
    [answer] = answers
    assert isinstance(answer, RecAnswer)
    assert answer.miner_hotkey in {neuron.hotkey for neuron in local_network}
    # the three miners gave the same valid list, saved in their standings; live requests carry no ground truth, so
    # without probes the bootstrap weights split evenly among the valid miners (probes: test_incentive, the whole
    # loop: bench/incentive_sim.py)
    miner_uids = sorted(neuron.uid for neuron in local_network)
    weights = chain.get_weights(netuid=NETUID, validator_hotkey=validator_hotkey)
    assert weights == {uid: pytest.approx(1 / 3) for uid in miner_uids}
    scores = MinerScore.objects.filter(netuid=NETUID, validator_hotkey=validator_hotkey).order_by("miner_uid")
    assert [(row.miner_uid, row.answers, row.valid_answers) for row in scores] == [(uid, 2, 2) for uid in miner_uids]
    # the validator advertised its API on the local chain, the gateway drew it and stored the miners' list
    registered = ChainNeuron.objects.get(netuid=NETUID, hotkey=validator_hotkey)
    [endpoint] = chosen
    assert endpoint is not None
    assert endpoint == ValidatorEndpoint(
        url=f"http://127.0.0.1:{registered.axon_port}", hotkey=validator_hotkey, stake=1000.0, uid=registered.uid
    )
    record = NetworkRequest.objects.get(store=store)
    assert (record.status, record.validator) == ("answered", endpoint.url)
    assert record.miner_hotkey in {neuron.hotkey for neuron in local_network}
    stored = RecommendationList.objects.get(store=store, source="network", query_id="p0")
    assert len(stored.item_ids) == 3 and "p0" not in stored.item_ids
