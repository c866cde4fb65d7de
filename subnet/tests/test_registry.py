"""The gateway's registry of validators: the chain's validators, their keys, their health, a draw by stake."""

import random
import socket
from collections import Counter

import numpy as np
import pytest
from django.core.cache import cache

from subnet import chain
from subnet.models import ChainNeuron
from subnet.tests.conftest import API_KEY

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.protocol import bt
from subnet.registry import (
    ValidatorEndpoint,
    choose_validator,
    client_for,
    is_healthy,
    list_validators,
    mark_down,
    validators_from_metagraph,
)

NETUID = 11
VALIDATOR = ChainNeuron.Role.VALIDATOR


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register_validator(hotkey: str, *, port: int, stake: float) -> ChainNeuron:
    chain.register_neuron(netuid=NETUID, hotkey=hotkey, role=VALIDATOR, stake=stake)
    return chain.serve_axon(netuid=NETUID, hotkey=hotkey, ip="127.0.0.1", port=port)


@pytest.fixture
def on_local_chain(settings):
    settings.BITRECS_NETWORK, settings.BITRECS_NETUID, settings.BITRECS_VALIDATOR_URL = "local", NETUID, ""
    settings.BITRECS_API_KEY = API_KEY


@pytest.mark.django_db
def test_local_chain_lists_the_validators_serving_an_api(on_local_chain):
    first = register_validator("5ValA", port=7001, stake=1000.0)
    second = register_validator("5ValB", port=7002, stake=3000.0)
    chain.register_neuron(netuid=NETUID, hotkey="5ValNoApi", role=VALIDATOR, stake=9000.0)  # no axon: not listed
    chain.register_neuron(netuid=NETUID, hotkey="5Miner", role=ChainNeuron.Role.MINER)

    assert list_validators() == [
        ValidatorEndpoint(url="http://127.0.0.1:7001", hotkey="5ValA", stake=1000.0, uid=first.uid),
        ValidatorEndpoint(url="http://127.0.0.1:7002", hotkey="5ValB", stake=3000.0, uid=second.uid),
    ]


@pytest.mark.django_db
def test_a_pinned_validator_url_wins_over_the_chain(on_local_chain, settings):
    register_validator("5ValA", port=7001, stake=1000.0)
    settings.BITRECS_VALIDATOR_URL = "http://validator.example:7779"

    assert list_validators() == [ValidatorEndpoint(url="http://validator.example:7779")]


def test_each_validator_gets_its_own_api_key(settings):
    settings.BITRECS_API_KEY = "default-key"
    settings.BITRECS_VALIDATOR_API_KEYS = {"5ValA": "key-a"}

    assert ValidatorEndpoint(url="http://a", hotkey="5ValA").api_key == "key-a"
    assert ValidatorEndpoint(url="http://b", hotkey="5ValB").api_key == "default-key"
    assert ValidatorEndpoint(url="http://c").api_key == "default-key"


def test_the_draw_follows_stake():
    endpoints = [
        ValidatorEndpoint(url="http://a", hotkey="a", stake=1000.0),
        ValidatorEndpoint(url="http://b", hotkey="b", stake=3000.0),
        ValidatorEndpoint(url="http://c", hotkey="c", stake=0.0),
    ]
    rng = random.Random(7)

    picks = [choose_validator(endpoints=endpoints, rng=rng, ping=lambda endpoint: None) for _ in range(4000)]

    draws = Counter(pick.hotkey for pick in picks if pick is not None)

    assert sum(draws.values()) == 4000
    assert set(draws) == {"a", "b"}  # no stake: drawn only when every other validator is down
    assert draws["b"] / draws["a"] == pytest.approx(3.0, rel=0.1)


def test_unhealthy_validators_are_skipped_and_none_is_returned_when_all_are_down(settings, start_validator):
    settings.BITRECS_API_KEY, settings.BITRECS_NETWORK = API_KEY, "test"
    healthy = start_validator()
    dead = ValidatorEndpoint(url=f"http://127.0.0.1:{closed_port()}", stake=1e9)
    alive = ValidatorEndpoint(url=healthy.url, stake=1.0)

    picks = {choose_validator(endpoints=[dead, alive], rng=random.Random(seed)) for seed in range(5)}

    assert picks == {alive}
    assert (is_healthy(dead), is_healthy(alive)) == (False, True)  # remembered, no new ping
    mark_down(alive, seconds=60)
    assert choose_validator(endpoints=[dead, alive]) is None


def test_health_is_pinged_once_and_then_cached(settings):
    settings.BITRECS_VALIDATOR_HEALTH_TTL_SECONDS = 60
    endpoint = ValidatorEndpoint(url="http://v")
    pings: list[str] = []

    for _ in range(3):
        assert is_healthy(endpoint, ping=lambda e: pings.append(e.url))

    assert pings == ["http://v"]
    cache.clear()
    assert is_healthy(endpoint, ping=lambda e: pings.append(e.url))
    assert pings == ["http://v", "http://v"]


def test_the_client_for_a_validator_signs_for_the_network_with_its_key(settings):
    settings.BITRECS_NETWORK, settings.BITRECS_VALIDATOR_API_KEYS = "finney", {"5ValA": "key-a"}

    client = client_for(ValidatorEndpoint(url="http://10.0.0.5:7779", hotkey="5ValA"))

    assert (client.base_url, client.network, client._api_key) == ("http://10.0.0.5:7779", "finney", "key-a")


# --------------------------------------------------------------------------------- test / finney metagraph


class MetagraphShape:
    """The fields of a bittensor `Metagraph` the registry reads: `axons`, `validator_permit`, `S`."""

    def __init__(self, axons, permits, stakes):
        self.axons = axons
        self.validator_permit = np.array(permits, dtype=bool)
        self.S = np.array(stakes, dtype=np.float32)


def axon(ip: str, hotkey: str) -> object:
    return bt.AxonInfo(version=1, ip=ip, port=8091, ip_type=4, hotkey=hotkey, coldkey="5Cold")


def test_metagraph_validators_need_a_permit_and_a_serving_axon():
    metagraph = MetagraphShape(
        axons=[
            axon("0.0.0.0", "5Burn"),  # noqa: S104 -- uid 0: permit, not serving
            axon("203.0.113.7", "5ValA"),  # uid 1: validator
            axon("203.0.113.8", "5Miner"),  # uid 2: no permit
            axon("198.51.100.2", "5ValB"),  # uid 3: validator
        ],
        permits=[True, True, False, True],
        stakes=[50000.0, 1234.5, 10.0, 4096.0],
    )

    assert validators_from_metagraph(metagraph, api_port=7779) == [
        ValidatorEndpoint(url="http://203.0.113.7:7779", hotkey="5ValA", stake=1234.5, uid=1),
        ValidatorEndpoint(url="http://198.51.100.2:7779", hotkey="5ValB", stake=4096.0, uid=3),
    ]


@pytest.mark.django_db
def test_a_cached_metagraph_is_not_read_again(settings):
    settings.BITRECS_NETWORK, settings.BITRECS_NETUID, settings.BITRECS_VALIDATOR_URL = "finney", 122, ""
    known = [ValidatorEndpoint(url="http://203.0.113.7:7779", hotkey="5ValA", stake=1.0, uid=1)]
    cache.set("subnet:metagraph-validators:finney:122", known, timeout=60)

    assert list_validators() == known
