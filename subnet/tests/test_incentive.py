"""Issue 15: the reward pays quality on ground truth; request pools say nothing by position; probes, both ends."""

import json
import random
from collections import Counter
from decimal import Decimal

import pytest

from catalog_sync.models import OrderLine
from catalog_sync.tests.factories import ProductFactory
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, Placement
from subnet import chain
from subnet.models import ChainNeuron
from subnet.probes import ShopperCase, build_case, draw_probe_cases, order_cases, read_sequences, sequence_cases
from subnet.services import WEAKER_SHARE, build_request_pool
from subnet.tests.conftest import RFC_PRIVATE_KEY_HEX, RFC_PUBLIC_KEY_HEX
from subnet.tests.test_scoring import CATALOG, answer, request

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from bittensor_wallet import Keypair

from subnet.signing import load_public_key, probe_request_message
from subnet.validator.keeper import ScoreKeeper
from subnet.validator.miners import MinerAnswer, OfflineMiner, OfflineMinerPool
from subnet.validator.probes import GatewayProbes, Probe, ProbeFetchError, ProbeMixer, parse_probes
from subnet.validator.public_key import StaticPublicKey
from subnet.validator.scoring import (
    ScoreBoard,
    Standing,
    chance_ndcg,
    conversion_quality,
    miner_score,
    ndcg_at_k,
    pick_winner,
    score_answers,
)

SKUS = [entry.sku for entry in CATALOG if entry.sku != "TEE-BLUE"]  # the query is TEE-BLUE


def probe_rewards(answers: list[MinerAnswer], bought: list[str]) -> list:
    return score_answers(answers=answers, request=request(), catalog=CATALOG, network="testnet", relevant=bought)


# ------------------------------------------------------------------------------------------ exact rewards


def test_probe_reward_is_ndcg_times_a_small_speed_bonus():
    first, second, miss, late = probe_rewards(
        [
            answer(1, ["MUG", "CAP", "JEANS"], latency=0.0),
            answer(2, ["CAP", "MUG", "JEANS"], latency=1.5),
            answer(3, ["CAP", "JEANS", "LAMP"], latency=0.0),
            answer(4, ["MUG", "CAP", "JEANS"], latency=3.5),
        ],
        bought=["MUG"],
    )

    assert (first.ndcg, first.speed, first.total) == (1.0, 1.0, pytest.approx(1.10))
    # the hit at rank 2: 1 / log2(3); speed 1 - 1.5 / 3
    assert second.ndcg == pytest.approx(0.6309298)
    assert (second.speed, second.total) == (0.5, pytest.approx(0.6309298 * 1.05))
    assert (miss.ndcg, miss.total, miss.valid) == (0.0, 0.0, True)
    assert (late.problem, late.ndcg, late.total) == ("too_slow", 0.0, 0.0)


def test_ndcg_with_two_bought_products_and_none():
    # hits at ranks 1 and 3 over the ideal of ranks 1 and 2
    assert ndcg_at_k(ranked=["A", "X", "b"], relevant=["a", "B"], k=3) == pytest.approx((1 + 0.5) / (1 + 0.6309298))
    assert ndcg_at_k(ranked=["A"], relevant=[], k=3) == 0.0
    assert ndcg_at_k(ranked=["X", "Y", "A"], relevant=["A"], k=2) == 0.0


def test_chance_ndcg_is_the_exact_expectation_of_a_uniform_random_pick():
    # one bought product among 4 candidates, k = 2: at rank 1 with chance 1/4 (gain 1), at rank 2 with 1/4 (1/log2 3)
    assert chance_ndcg(candidates=["a", "b", "c", "d"], relevant=["C"], k=2) == pytest.approx((1 + 0.6309298) / 4)
    # the bought product is not among the candidates; duplicates count once
    assert chance_ndcg(candidates=["a", "b"], relevant=["z"], k=2) == 0.0
    assert chance_ndcg(candidates=["a", "A", "b"], relevant=["a"], k=5) == pytest.approx((1 + 0.6309298) / 2)


def test_miner_score_multiplies_validity_quality_and_the_speed_bonus():
    standing = Standing(hotkey="5M", validity=0.9, speed=0.5, quality=0.4)

    assert miner_score(standing=standing) == pytest.approx(0.9 * 0.4 * 1.05)
    assert miner_score(standing=Standing(hotkey="5M", validity=1.0, speed=1.0, quality=0.0)) == 0.0


def test_conversions_count_per_impression_once_there_are_enough():
    actions = {"5m": 2.5}  # e.g. three purchases less some views

    assert conversion_quality(hotkey="5M", actions=actions, impressions=99) is None
    # 2.5 / 100 impressions = 0.025 per impression, half of the 0.05 scale
    assert conversion_quality(hotkey="5M", actions=actions, impressions=100) == pytest.approx(0.5)
    assert conversion_quality(hotkey="5M", actions={"5m": 50.0}, impressions=100) == 1.0
    standing = Standing(hotkey="5M", validity=1.0, speed=0.0, quality=0.2, served=100)
    assert miner_score(standing=standing, actions=actions) == pytest.approx(0.7 * 0.2 + 0.3 * 0.5)


def test_the_winner_is_the_answer_of_the_best_scored_miner():
    rewards = score_answers(
        answers=[
            answer(1, ["CAP", "JEANS", "MUG"], latency=0.1),
            answer(2, ["CAP", "JEANS", "MUG"], latency=0.1),
            answer(3, ["LAMP", "TEE-RED", "TEE-GREEN"], latency=2.0),  # agrees with nobody, best on probes
        ],
        request=request(),
        catalog=CATALOG,
        network="testnet",
    )

    assert pick_winner(rewards, scores={1: 0.1, 2: 0.1, 3: 0.3}).uid == 3  # type: ignore[union-attr]
    assert pick_winner(rewards, scores={}).uid == 1  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- lazy and random lose to good


def test_lazy_and_random_miners_lose_to_a_good_one_while_todays_formula_pays_the_fast_lazy_one():
    """Probes whose shopper bought a product the good miner ranks first; the lazy miner answers the context in
    order at 10 ms, the random one random valid SKUs, the good one takes 2.5 s."""
    rng = random.Random(3)
    board, today = ScoreBoard(), {1: 0.0, 2: 0.0, 3: 0.0}
    for _ in range(200):
        bought = rng.choice(SKUS)
        good = [bought, *rng.sample([sku for sku in SKUS if sku != bought], 2)]
        rewards = probe_rewards(
            [
                answer(1, good, latency=2.5),
                answer(2, SKUS[:3], latency=0.01),
                answer(3, rng.sample(SKUS, 3), latency=0.01),
            ],
            bought=[bought],
        )
        board.update(rewards, probe=True)
        for reward in rewards:
            today[reward.uid] = 0.1 * reward.legacy + 0.9 * today[reward.uid]

    weights = board.weights()
    assert weights[1] > 2 * max(weights[2], weights[3])
    assert today[2] > today[1]  # today's 0.80 - 0.05 t: the fast lazy miner beats the good one


# --------------------------------------------------------------------------------- request pools (gateway)


@pytest.fixture
def shop(db):
    store = StoreFactory()
    products = [
        ProductFactory(store=store, external_id=f"p{i}", sku=f"SKU-{i:03d}", title=f"Item {i}", price=Decimal("5"))
        for i in range(40)
    ]
    return store, products


def test_request_pool_is_reproducible_by_seed_shuffled_and_mixes_in_weaker_candidates(shop):
    store, products = shop
    query = products[0]

    first = build_request_pool(store=store, product=query, size=20, rng=random.Random(1))
    again = build_request_pool(store=store, product=query, size=20, rng=random.Random(1))
    other = build_request_pool(store=store, product=query, size=20, rng=random.Random(2))

    assert [p.sku for p in first] == [p.sku for p in again]
    assert [p.sku for p in first] != [p.sku for p in other]
    assert len(first) == 20 and len({p.sku for p in first}) == 20 and query in first
    assert first[0] != query or other[0] != query  # the query is not pinned first
    from subnet.selectors import list_candidate_pool

    ranked = [p.sku for p in list_candidate_pool(store=store, product=query, size=40)]
    strong, rest = set(ranked[1:15]), set(ranked[15:])
    # 19 slots: the engine's best 14, then 5 (a quarter) drawn from its lower ranks
    assert round(19 * WEAKER_SHARE) == 5
    assert strong <= {p.sku for p in first}
    assert len({p.sku for p in first} & rest) == 5


def test_a_probe_pool_holds_the_bought_product_and_keeps_the_live_size(shop):
    store, products = shop
    ranked = __import__("subnet.selectors", fromlist=["x"]).list_candidate_pool(
        store=store, product=products[0], size=40
    )
    outsider = ranked[-1]  # not in a 10-product pool

    pool = build_request_pool(store=store, product=products[0], size=10, rng=random.Random(4), include=[outsider])

    assert len(pool) == 10 and outsider in pool


# -------------------------------------------------------------------------------------------- probe cases


def test_sequences_give_cases_with_the_last_item_bought_and_the_one_before_the_query():
    records: list = [
        {"user_id": "u1", "parent_asin": "A", "timestamp": 1},
        {"user_id": "u1", "parent_asin": "B", "timestamp": 2},
        {"user_id": "u1", "parent_asin": "A", "timestamp": 3},  # repeat: first kept
        {"user_id": "u1", "parent_asin": "C", "timestamp": 4},
        {"user_id": "u2", "parent_asin": "A", "timestamp": 1},
        {"user_id": "u2", "parent_asin": "B", "timestamp": 2},  # two items: no session, no case
        "junk",
    ]

    cases = sequence_cases(sequences=read_sequences(records=records))

    assert cases == [ShopperCase(query="B", bought=("C",), session=("A",), source="sequences")]


def test_attributed_order_lines_give_cases_about_the_recommended_on_product(shop):
    store, products = shop
    NetworkAnswer.objects.create(
        store=store, product=products[1], placement=Placement.PRODUCT, rec_id="n_abc", miner_hotkey="5M"
    )
    for line, (product, rec_id) in enumerate([(products[2], "n_abc"), (products[3], "")]):
        OrderLine.objects.create(
            store=store, order_id="o1", line_id=str(line), product=product, sku=product.sku, rec_id=rec_id
        )

    assert order_cases(store=store) == [
        ShopperCase(query="SKU-001", bought=("SKU-002",), session=("SKU-003",), source="orders")
    ]
    probe = build_case(store=store, case=order_cases(store=store)[0], rng=random.Random(5))
    assert probe is not None
    assert (probe.site_key, probe.query, probe.bought, probe.num_results) == (
        store.site_key,
        "SKU-001",
        ("SKU-002",),
        5,
    )
    skus = [item["sku"] for item in json.loads(probe.context)]
    assert "SKU-002" in skus and "SKU-001" in skus and len(skus) == 40


def test_draw_prefers_order_history_then_held_out_sequences(shop):
    store, _ = shop
    sequences = [("SKU-010", "SKU-011", "SKU-012"), ("SKU-020", "SKU-021", "SKU-022")]

    drawn = draw_probe_cases(count=2, rng=random.Random(6), stores=[store], sequences=sequences)

    assert sorted((case.query, case.bought, case.source) for case in drawn) == [
        ("SKU-011", ("SKU-012",), "sequences"),
        ("SKU-021", ("SKU-022",), "sequences"),
    ]


# ---------------------------------------------------------------------------------- the probe endpoint


VALIDATOR = Keypair.create_from_uri("//ProbeValidator")


def fetch(client, *, key=VALIDATOR, count="2", timestamp=None, path=None):
    import time

    stamp = str(int(time.time())) if timestamp is None else timestamp
    url = f"/subnet/validator/probes?count={count}"
    signature = key.sign(probe_request_message(timestamp=stamp, hotkey=key.ss58_address, path=path or url)).hex()
    return client.get(url, HTTP_X_HOTKEY=key.ss58_address, HTTP_X_TIMESTAMP=stamp, HTTP_X_SIGNATURE=signature), stamp


@pytest.fixture
def probe_gateway(shop, settings):
    settings.BITRECS_NETWORK = "local"
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    store, _ = shop
    chain.register_neuron(
        netuid=settings.BITRECS_NETUID, hotkey=VALIDATOR.ss58_address, role=ChainNeuron.Role.VALIDATOR
    )
    return store


def test_a_registered_validator_gets_probes_signed_by_the_gateway(client, probe_gateway, monkeypatch):
    sequences = [("SKU-010", "SKU-011", "SKU-012"), ("SKU-020", "SKU-021", "SKU-022")]
    monkeypatch.setattr("subnet.probes.load_probe_sequences", lambda: sequences)

    response, stamp = fetch(client)

    assert response.status_code == 200
    cases = response.json()["cases"]
    assert sorted(case["bought"][0] for case in cases) == ["SKU-012", "SKU-022"]
    from subnet.signing import probe_response_message

    load_public_key(hex_key=RFC_PUBLIC_KEY_HEX).verify(
        bytes.fromhex(response["x-signature"]),
        probe_response_message(timestamp=stamp, hotkey=VALIDATOR.ss58_address, body=response.content),
    )
    assert len(parse_probes(response.json())) == 2


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"key": Keypair.create_from_uri("//SomeMiner")}, 403, "not_a_validator"),
        ({"path": "/subnet/validator/probes?count=50"}, 401, "bad_signature"),
        ({"timestamp": "1000"}, 401, "bad_timestamp"),
        ({"count": "51"}, 400, "invalid_count"),
        ({"count": "x"}, 400, "invalid_count"),
    ],
)
def test_probe_requests_that_are_not_from_a_registered_validator_are_refused(
    client, probe_gateway, kwargs, status, error
):
    response, _ = fetch(client, **kwargs)

    assert (response.status_code, response.json()["error"]) == (status, error)
    assert "detail" in response.json()


def test_an_unsigned_probe_request_is_401(client, probe_gateway):
    response = client.get("/subnet/validator/probes?count=2")

    assert (response.status_code, response.json()["error"]) == (401, "bad_timestamp")


@pytest.mark.django_db(transaction=True)
def test_validator_fetches_and_checks_probes_from_the_gateway(live_server, settings, monkeypatch):
    settings.BITRECS_NETWORK = "local"
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    store = StoreFactory.create()
    for i in range(12):
        ProductFactory(store=store, external_id=f"p{i}", sku=f"SKU-{i:03d}", title=f"Item {i}", price=Decimal("5"))
    chain.register_neuron(
        netuid=settings.BITRECS_NETUID, hotkey=VALIDATOR.ss58_address, role=ChainNeuron.Role.VALIDATOR
    )
    monkeypatch.setattr("subnet.probes.load_probe_sequences", lambda: [("SKU-001", "SKU-002", "SKU-003")])
    good_key = StaticPublicKey(load_public_key(hex_key=RFC_PUBLIC_KEY_HEX))
    other_key = StaticPublicKey(
        load_public_key(hex_key="3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    )

    probes = GatewayProbes(f"{live_server.url}/subnet", keypair=VALIDATOR, public_key=good_key, count=3).fetch()

    assert probes == [Probe(store.site_key, "SKU-002", probes[0].context, 5, ("SKU-003",))]
    with pytest.raises(ProbeFetchError, match="not signed by the gateway"):
        GatewayProbes(f"{live_server.url}/subnet", keypair=VALIDATOR, public_key=other_key).fetch()
    stranger = Keypair.create_from_uri("//Stranger")
    with pytest.raises(ProbeFetchError, match="403"):
        GatewayProbes(f"{live_server.url}/subnet", keypair=stranger, public_key=good_key).fetch()


def test_hostile_probe_cases_are_dropped():
    good = {"site_key": "s", "query": "SKU-1", "context": "[]", "num_results": 5, "bought": ["A"]}
    cases = [
        good,
        {**good, "bought": []},
        {**good, "bought": [1]},
        {**good, "num_results": True},
        {**good, "num_results": 21},
        {**good, "query": "ab"},
        {**good, "site_key": ""},
        {**good, "context": "x\x00"},
        "junk",
    ]

    assert parse_probes({"cases": cases}) == [Probe("s", "SKU-1", "[]", 5, ("A",))]
    assert parse_probes([good]) == []


# ------------------------------------------------------------------------------------------ the probe mixer


def test_a_probe_reaches_miners_as_a_live_request_and_scores_ndcg():
    context = json.dumps([{"sku": e.sku, "name": e.name, "price": e.price} for e in CATALOG])
    seen = []

    class Recording(OfflineMinerPool):
        def query(self, request):
            seen.append(request)
            return super().query(request)

    keeper = ScoreKeeper(board=ScoreBoard(quality_alpha=1.0))
    pool = Recording([OfflineMiner(uid=1, hotkey="5M1")])
    bought = ("TEE-RED",)
    mixer = ProbeMixer(
        source=lambda: [Probe("s1", "TEE-BLUE", context, 3, bought)],
        pool=pool,
        keeper=keeper,
        network="testnet",
        rng=random.Random(0),
    )

    [reward] = mixer.run_once() or []

    [sent] = seen
    body = sent.to_request_body()
    assert {key: body[key] for key in ("user", "results", "models_used", "miner_uid", "miner_hotkey")} == {
        "user": "",
        "results": [],
        "models_used": [],
        "miner_uid": "",
        "miner_hotkey": "",
    }
    assert "TEE-RED" not in json.dumps(body) or "Red Cotton Tee" in body["context"]  # only as a catalog product
    assert sorted(Counter(e["sku"] for e in json.loads(body["context"]))) == sorted(e.sku for e in CATALOG)
    assert reward.ndcg == pytest.approx(ndcg_at_k(ranked=[r["sku"] for r in reward.results], relevant=bought, k=3))
    assert (reward.ndcg or 0.0) > 0
    assert keeper.board.snapshot()[1].quality == pytest.approx(reward.ndcg)
    assert mixer.run_once() is not None and mixer.sent == 2  # the stock is refilled
