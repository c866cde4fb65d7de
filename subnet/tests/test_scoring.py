"""Scoring miners' answers, choosing the answer the gateway gets, moving averages and weights on the local chain."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from catalog_sync.models import OrderLine
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, Placement
from subnet import chain
from subnet.models import ChainNeuron, MinerScore
from subnet.tests.conftest import API_KEY, StubReply

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.protocol import BitrecsRequest
from subnet.tests.test_validator_api import signed_post
from subnet.types import encode_result
from subnet.validator.actions import GatewayActions
from subnet.validator.catalog import CatalogEntry
from subnet.validator.keeper import LocalChainWeights, ScoreKeeper
from subnet.validator.miners import MinerAnswer
from subnet.validator.scoring import (
    Reward,
    ScoreBoard,
    action_totals,
    conversion_boost,
    list_diversity,
    pick_winner,
    score_answers,
)

CATALOG = [
    CatalogEntry(sku=sku, name=name, price="10")
    for sku, name in [
        ("TEE-BLUE", "Blue Cotton Tee"),
        ("TEE-RED", "Red Cotton Tee"),
        ("TEE-GREEN", "Green Cotton Tee"),
        ("CAP", "Baseball Cap"),
        ("JEANS", "Denim Jeans"),
        ("MUG", "Coffee Mug"),
        ("LAMP", "Desk Lamp"),
    ]
]
NAMES = {entry.sku: entry.name for entry in CATALOG}


def request(*, query: str = "TEE-BLUE", num_results: int = 3) -> BitrecsRequest:
    return BitrecsRequest(
        created_at="2025-06-28T20:00:00",
        user="",
        num_results=num_results,
        query=query,
        context=json.dumps([{"sku": e.sku, "name": e.name, "price": e.price} for e in CATALOG]),
        site_key="s1",
        results=[],
        models_used=[],
        miner_uid=None,
        miner_hotkey=None,
    )


def answer(uid: int, skus: list[str], *, latency: float = 1.0, error: str = "", hotkey: str = "") -> MinerAnswer:
    return MinerAnswer(
        uid=uid,
        hotkey=hotkey or f"5Miner{uid}",
        query="TEE-BLUE",
        created_at="2025-06-28T20:00:01",
        results=tuple(
            encode_result(item={"sku": sku, "name": NAMES.get(sku, sku), "price": "10", "reason": "goes with"})
            for sku in skus
        ),
        models_used=("m",),
        latency_seconds=latency,
        error=error,
    )


def score(answers: list[MinerAnswer], **kwargs) -> list[Reward]:
    return score_answers(answers=answers, request=request(), catalog=CATALOG, network="testnet", **kwargs)


# ---------------------------------------------------------------------------------------------- per answer


def test_a_valid_answer_scores_latency_diversity_and_agreement():
    [alone] = score([answer(1, ["CAP", "JEANS", "MUG"], latency=2.0)])
    first, second = score([answer(1, ["CAP", "JEANS", "MUG"], latency=2.0), answer(2, ["CAP", "JEANS", "LAMP"])])

    # 0.80 - 0.05 * 2 s; names share no words: diversity 1; nobody to agree with
    assert (alone.problem, alone.diversity, alone.agreement, alone.boost) == ("", 1.0, 0.0, 0.0)
    assert alone.latency == pytest.approx(0.70)
    assert alone.legacy == pytest.approx(0.70 + 0.10 * 1.0)
    # a live request: no ground truth, so no quality reward of its own; speed 1 - 2/3
    assert (alone.ndcg, alone.total, alone.speed) == (None, 0.0, pytest.approx(1 / 3))
    # two of four distinct SKUs shared: Jaccard 0.5 each way
    assert (first.agreement, second.agreement) == (0.5, 0.5)
    assert first.legacy == pytest.approx(0.70 + 0.10 + 0.05)
    assert second.legacy == pytest.approx(0.75 + 0.10 + 0.05)


def test_a_list_of_near_duplicates_is_less_diverse():
    [variants] = score([answer(1, ["TEE-RED", "TEE-GREEN", "CAP"])])

    # "red cotton tee" vs "green cotton tee": 2/4 shared; each vs "baseball cap": 0 -> mean 1/6
    assert variants.diversity == pytest.approx(1 - 0.5 / 3)
    assert list_diversity(["Blue Cotton Tee", "Blue Cotton Tee"]) == 0.0
    assert list_diversity(["Only One"]) == 1.0


@pytest.mark.parametrize(
    ("miner_answer", "problem"),
    [
        (answer(1, ["CAP", "JEANS"]), "wrong_count"),
        (answer(1, ["CAP", "JEANS", "NOPE"]), "unknown_sku"),
        (answer(1, ["CAP", "CAP", "MUG"]), "duplicate_sku"),
        (answer(1, ["CAP", "tee-blue", "MUG"]), "query_sku"),
        (answer(1, [], error="http_408"), "http_408"),
        (
            MinerAnswer(uid=1, hotkey="5M", query="q", created_at="", results=("{oops", "{}", "{}"), models_used=()),
            "malformed_json",
        ),
        (
            MinerAnswer(
                uid=1,
                hotkey="5M",
                query="q",
                created_at="",
                results=tuple(json.dumps({"sku": s, "name": s, "price": "1"}) for s in ("CAP", "MUG", "LAMP")),
                models_used=(),
            ),
            "malformed_item",
        ),
    ],
)
def test_an_invalid_answer_scores_zero_with_its_reason(miner_answer, problem):
    [reward] = score([miner_answer, answer(2, ["CAP", "JEANS", "MUG"])])[:1]

    assert (reward.problem, reward.total, reward.legacy, reward.valid) == (problem, 0.0, 0.0, False)


def test_an_answer_over_the_latency_budget_is_invalid_though_today_it_still_earned():
    [slow, in_time] = score(
        [answer(1, ["CAP", "JEANS", "MUG"], latency=30.0), answer(2, ["CAP", "JEANS", "MUG"], latency=3.0)]
    )

    assert (slow.problem, slow.valid, slow.total) == ("too_slow", False, 0.0)
    # today's formula: latency part floored at 0, diversity 1, full agreement with the other answer
    assert (slow.latency, slow.legacy) == (0.0, pytest.approx(0.10 + 0.10))
    assert (in_time.valid, in_time.speed) == (True, 0.0)


# ----------------------------------------------------------------------------------------------- conversions


def test_conversion_boost_follows_the_public_formula():
    totals = action_totals(
        [
            {"hot_key": "5Miner1", "action": "PURCHASE"},
            {"hot_key": "5MINER1", "action": "VIEW_PRODUCT"},
            {"hot_key": "5Miner2", "action": "ADD_TO_CART"},
            {"hot_key": "5Miner2", "action": "REFUND"},  # unknown action: skipped
            {"hot_key": None, "action": "PURCHASE"},  # no hotkey: skipped
        ]
    )

    assert totals == {"5miner1": pytest.approx(0.90), "5miner2": pytest.approx(0.10)}
    # 0.20 / (1 + exp(-0.90 + 1/256))
    assert conversion_boost(hotkey="5Miner1", actions=totals) == pytest.approx(0.142029, abs=1e-6)
    assert conversion_boost(hotkey="5Miner2", actions=totals) == pytest.approx(0.104801, abs=1e-6)
    assert conversion_boost(hotkey="5Nobody", actions=totals) == 0.0
    assert conversion_boost(hotkey="5Whale", actions={"5whale": 1000.0}) == pytest.approx(0.20)
    [boosted, plain] = score([answer(1, ["CAP", "JEANS", "MUG"]), answer(2, ["CAP", "JEANS", "MUG"])], actions=totals)
    assert boosted.legacy - plain.legacy == pytest.approx(0.142029 - 0.104801, abs=1e-6)


# ------------------------------------------------------------------------------------------------- winner


def test_the_winner_is_the_best_scored_of_the_most_alike_answers():
    rewards = score(
        [
            answer(1, ["CAP", "JEANS", "MUG"], latency=3.0),
            answer(2, ["CAP", "JEANS", "MUG"], latency=1.0),
            answer(3, ["LAMP", "TEE-RED", "TEE-GREEN"], latency=0.1),  # fastest, but agrees with nobody
        ]
    )

    winner = pick_winner(rewards)

    assert winner is not None and winner.uid == 2
    assert [item["sku"] for item in winner.results] == ["CAP", "JEANS", "MUG"]


def test_one_valid_answer_wins_and_no_valid_answer_gives_none():
    rewards = score([answer(1, ["CAP"], latency=0.1), answer(2, ["CAP", "JEANS", "MUG"], latency=2.9)])

    assert pick_winner(rewards).uid == 2  # type: ignore[union-attr]
    assert pick_winner(score([answer(1, ["CAP"])])) is None
    assert pick_winner([]) is None


# ------------------------------------------------------------------------------------------ moving average


def probe(answers: list[MinerAnswer], *, bought: tuple[str, ...] = ("CAP",)) -> list:
    return score(answers, relevant=list(bought))


def test_moving_average_updates_the_asked_miners_and_resets_a_new_hotkey():
    board = ScoreBoard(alpha=0.1, quality_alpha=0.1)

    board.update(probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0), answer(2, [], error="http_408")]), probe=True)
    board.update(probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0)]), probe=True)
    first = board.snapshot()
    board.update(probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0, hotkey="5NewOwner")]), probe=True)

    # NDCG 1, speed 1, valid: each average goes 0.1, then 0.19; score = V * Q * (1 + 0.1 * S)
    assert (first[1].validity, first[1].speed, first[1].quality) == pytest.approx((0.19, 0.19, 0.19))
    assert first[1].score == pytest.approx(0.19 * 0.19 * 1.019)
    assert (first[1].answers, first[1].valid_answers, first[1].probes) == (2, 2, 2)
    assert (first[2].answers, first[2].valid_answers, first[2].score) == (1, 0, 0.0)
    assert (board.snapshot()[1].hotkey, board.snapshot()[1].score) == ("5NewOwner", pytest.approx(0.1 * 0.1 * 1.01))
    assert board.weights() == {1: 1.0}


def test_a_request_where_no_answer_is_valid_changes_nothing():
    board = ScoreBoard()
    board.update(probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0)]), probe=True)
    before = board.snapshot()

    changed = board.update(score([answer(1, ["CAP"]), answer(2, [], error="http_408")]))

    assert (changed, board.snapshot()) == (False, before)


def test_weights_are_scores_normalised_to_one():
    board = ScoreBoard(alpha=1.0, quality_alpha=1.0)
    board.update(
        probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0), answer(2, ["JEANS", "CAP", "LAMP"])]), probe=True
    )
    snapshot = board.snapshot()

    weights = board.weights()

    total = snapshot[1].score + snapshot[2].score
    assert weights == {1: pytest.approx(snapshot[1].score / total), 2: pytest.approx(snapshot[2].score / total)}
    assert weights[1] > weights[2] > 0
    assert ScoreBoard().weights() == {}


def test_before_any_quality_evidence_weights_split_evenly_among_valid_in_time_miners():
    board = ScoreBoard()
    live = score(
        [
            answer(1, ["CAP", "JEANS", "MUG"], latency=0.01),  # fast
            answer(2, ["LAMP", "TEE-RED", "MUG"], latency=2.9),  # slow but within the 3 s budget
            answer(3, ["CAP"]),  # wrong count
            answer(4, ["CAP", "JEANS", "MUG"], latency=3.5),  # over the budget
        ]
    )

    board.update(live)
    bootstrap = board.weights()
    for _ in range(100):  # a hundred impressions without a view, cart or purchase: still no evidence of quality
        board.served(live[0])
    board.rescore(actions={})
    unconverted = board.weights()
    board.update(
        probe([answer(1, ["CAP", "JEANS", "MUG"], latency=0.0), answer(2, ["MUG", "CAP", "LAMP"])], bought=("MUG",)),
        probe=True,
    )
    after_probe = board.weights()

    # no probe and no conversions yet: validity alone (0.1 each after one valid answer); speed does not count
    assert bootstrap == unconverted == {1: 0.5, 2: 0.5}
    # the first probe switches to V * Q * (1 + 0.1 S): miner 1 hit at rank 3 (NDCG 0.5), miner 2 at rank 1 (NDCG 1)
    speed_1 = 0.1 * 1.0 + 0.9 * (0.1 * (1 - 0.01 / 3))
    speed_2 = 0.1 * (1 - 1.0 / 3) + 0.9 * (0.1 * (1 - 2.9 / 3))
    # miner 1's 100 impressions without conversions are known now: Q = 0.7 P + 0.3 * 0
    score_1 = 0.19 * 0.7 * 0.03 * 0.5 * (1 + 0.1 * speed_1)
    score_2 = 0.19 * 0.03 * 1.0 * (1 + 0.1 * speed_2)
    total = score_1 + score_2
    assert after_probe == {1: pytest.approx(score_1 / total), 2: pytest.approx(score_2 / total)}
    assert board.snapshot()[4].validity == 0.0 and 4 not in after_probe


# ---------------------------------------------------------------------------------- keeper and local chain


NETUID = 9


@pytest.fixture
def local_chain(db):
    validator = chain.register_neuron(netuid=NETUID, hotkey="5Validator", role=ChainNeuron.Role.VALIDATOR)
    miners = [
        chain.register_neuron(netuid=NETUID, hotkey=f"5Miner{uid}", role=ChainNeuron.Role.MINER) for uid in (1, 2)
    ]
    return validator, miners


def test_keeper_sets_weights_on_the_local_chain_when_due_and_a_restart_resumes(local_chain):
    validator, (miner1, miner2) = local_chain
    now = [100.0]
    sink = LocalChainWeights(netuid=NETUID, validator_hotkey=validator.hotkey)
    board = ScoreBoard(quality_alpha=0.1)
    keeper = ScoreKeeper(board=board, sink=sink, weights_interval=60, clock=lambda: now[0])
    rewards = probe([answer(miner1.uid, ["CAP", "JEANS", "MUG"], latency=0.0), answer(miner2.uid, ["CAP"])])

    keeper.record(rewards, probe=True)  # not due yet
    before = chain.get_weights(netuid=NETUID, validator_hotkey=validator.hotkey)
    now[0] += 60
    keeper.record(rewards, probe=True)

    assert before == {}
    assert chain.get_weights(netuid=NETUID, validator_hotkey=validator.hotkey) == {miner1.uid: 1.0}
    saved = {row.miner_uid: row for row in MinerScore.objects.filter(netuid=NETUID, validator_hotkey="5Validator")}
    assert saved[miner1.uid].score == pytest.approx(0.19 * 0.19 * 1.019)
    assert (saved[miner1.uid].validity, saved[miner1.uid].quality, saved[miner1.uid].probes) == (
        pytest.approx(0.19),
        pytest.approx(0.19),
        2,
    )
    assert (saved[miner1.uid].answers, saved[miner2.uid].answers, saved[miner2.uid].score) == (2, 2, 0.0)
    assert (keeper.steps, keeper.syncs) == (2, 1)

    # a restarted validator resumes the saved scores, except for a uid that changed hands
    ChainNeuron.objects.filter(uid=miner2.uid, netuid=NETUID).update(hotkey="5Stranger")
    resumed = ScoreKeeper(sink=sink).board.snapshot()
    assert list(resumed) == [miner1.uid]
    assert resumed[miner1.uid].score == pytest.approx(0.19 * 0.19 * 1.019)
    assert resumed[miner1.uid].quality == pytest.approx(0.19)


def test_keeper_survives_a_chain_that_refuses_the_weights(local_chain, caplog):
    _, (miner1, _) = local_chain
    sink = LocalChainWeights(netuid=NETUID, validator_hotkey="5NotAValidator")
    keeper = ScoreKeeper(sink=sink, weights_interval=1, clock=iter([0.0, 5.0, 5.0]).__next__)

    keeper.record(probe([answer(miner1.uid, ["CAP", "JEANS", "MUG"])]), probe=True)

    assert (keeper.steps, keeper.syncs) == (1, 0)
    assert "subnet.validator_set_weights_failed" in caplog.text


# ------------------------------------------------------------------------------- actions from the gateway


@pytest.mark.django_db(transaction=True)
def test_validator_reads_conversions_from_the_gateway_stats_endpoint(live_server):
    store = StoreFactory.create(site_key="conv-shop")
    NetworkAnswer.objects.create(
        store=store, placement=Placement.PRODUCT, rec_id="n_abc", item_ids=["1"], miner_hotkey="5Miner1"
    )
    bought = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    for line_id in ("1", "2"):
        OrderLine.objects.create(
            store=store,
            order_id="o1",
            line_id=line_id,
            sku="CAP",
            rec_id="n_abc",
            created_at=bought,
            price=Decimal("5"),
        )
    # the window [now - 60 d, now - 30 d] around the purchases
    actions = GatewayActions(f"{live_server.url}/subnet", clock=lambda: bought.timestamp() + 45 * 86_400)

    synced = actions.sync()

    assert (synced, actions.last_error) == (True, "")
    assert actions.totals() == {"5miner1": pytest.approx(1.70)}


def test_a_gateway_answer_that_is_not_a_list_keeps_the_previous_totals(stub_server):
    stub_server.replies.append(StubReply(status=200, body={"not": "a list"}))
    actions = GatewayActions(f"{stub_server.url}/subnet", clock=lambda: 10_000_000.0)

    assert actions.sync() is False
    assert actions.totals() == {}
    assert "are not a JSON list" in actions.last_error


# ------------------------------------------------------------------------------------- through the /rec API


def test_rec_scores_every_miner_asked_and_answers_with_the_winner(start_validator, private_key, luma_body):
    keeper = ScoreKeeper()
    server = start_validator(keeper=keeper)  # two offline miners, uids 1 and 2, identical answers

    response = signed_post(server.url, luma_body, private_key)

    assert response.status_code == 200
    assert response.json()["miner_uid"] == "1"  # equal scores: the lower uid
    standings = keeper.board.snapshot()
    assert sorted(standings) == [1, 2]
    # a live request measures validity and speed only: no miner earns before a probe
    assert standings[1].validity == standings[2].validity == pytest.approx(0.1)
    assert standings[1].score == standings[2].score == 0.0
    assert (standings[1].served, standings[2].served) == (1, 0)
    assert keeper.steps == 1
    assert requests.get(f"{server.url}/ping", headers={"Authorization": API_KEY}, timeout=5).status_code == 200
