"""The portal's network reads: rounds the validator records, the leaderboard, a miner's and a validator's figures."""

import functools
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from merchants.tests.factories import StoreFactory
from recommendations.models import DailyRollup
from subnet import chain
from subnet.models import ChainNeuron, MinerScore, NetworkRequest, ScoreRound
from subnet.services import check_validator_health
from subnet.standings import (
    ChainUnavailable,
    Neuron,
    get_miner_report,
    get_neuron,
    get_validator_report,
    list_leaderboard,
    list_neurons,
    neurons_from_metagraph,
    percentile,
)
from subnet.tests.conftest import API_KEY
from subnet.tests.test_scoring import answer, probe
from subnet.validator.keeper import LocalChainWeights, ScoreKeeper, record_rounds

NETUID = 122  # BITRECS_NETUID of the test settings
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def local_chain(db, settings):
    settings.BITRECS_NETWORK = "local"
    settings.BITRECS_NETUID = NETUID
    validator = chain.register_neuron(netuid=NETUID, hotkey="5Validator", role=ChainNeuron.Role.VALIDATOR, stake=3.0)
    miners = [
        chain.register_neuron(netuid=NETUID, hotkey=f"5Miner{uid}", role=ChainNeuron.Role.MINER) for uid in (1, 2, 3)
    ]
    return validator, miners


def keeper_for(validator: ChainNeuron) -> ScoreKeeper:
    return ScoreKeeper(
        sink=LocalChainWeights(netuid=NETUID, validator_hotkey=validator.hotkey),
        weights_interval=3600,
        history=functools.partial(record_rounds, netuid=NETUID, validator_hotkey=validator.hotkey),
    )


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([], 0.5, None), ([7], 0.99, 7), ([500, 700], 0.5, 500), ([500, 700], 0.99, 700), (list(range(1, 101)), 0.99, 99)],
)
def test_percentile_is_nearest_rank(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_each_weight_setting_records_a_round_per_miner_with_its_rejections_agreement_and_latency(local_chain):
    validator, (miner1, miner2, miner3) = local_chain
    keeper = keeper_for(validator)
    lists = ["CAP", "JEANS", "MUG"]

    keeper.record(
        probe(
            [
                answer(miner1.uid, lists, latency=0.5),
                answer(miner2.uid, lists, latency=1.5),
                answer(miner3.uid, [], error="http_408"),
            ]
        ),
        probe=True,
    )
    keeper.record(probe([answer(miner1.uid, lists, latency=0.7), answer(miner3.uid, ["CAP"])]), probe=True)
    assert keeper.sync() is True

    rounds = {row.miner_uid: row for row in ScoreRound.objects.all()}
    assert [rounds[uid].rank for uid in (miner1.uid, miner2.uid, miner3.uid)] == [1, 2, 3]
    assert rounds[miner1.uid].latency_p50_ms == 500
    assert rounds[miner1.uid].latency_p99_ms == 700
    # Jaccard 1 with miner 2's identical list, then 0 when no other valid list came (scoring's rule for alone)
    assert rounds[miner1.uid].agreement == pytest.approx(0.5)
    assert (rounds[miner1.uid].round_answers, rounds[miner1.uid].round_valid) == (2, 2)
    assert rounds[miner3.uid].problems == {"http_408": 1, "wrong_count": 1}
    slow = rounds[miner3.uid]
    assert (slow.round_answers, slow.round_valid, slow.agreement) == (2, 0, None)
    assert rounds[miner3.uid].weight == 0.0
    assert rounds[miner1.uid].weight + rounds[miner2.uid].weight == pytest.approx(1.0)
    assert rounds[miner1.uid].score == MinerScore.objects.get(miner_uid=miner1.uid).score
    assert keeper.tallies == {}  # the next round counts afresh


def test_a_failing_history_does_not_fail_the_weight_setting(local_chain):
    validator, (miner1, *_) = local_chain

    def broken(**_: object) -> None:
        raise RuntimeError("disk full")

    keeper = ScoreKeeper(sink=LocalChainWeights(netuid=NETUID, validator_hotkey=validator.hotkey), history=broken)
    keeper.record(probe([answer(miner1.uid, ["CAP", "JEANS", "MUG"])]), probe=True)

    assert keeper.sync() is True
    assert chain.get_weights(netuid=NETUID, validator_hotkey=validator.hotkey) == {miner1.uid: 1.0}


def make_round(
    *, miner: ChainNeuron, validator: str, rank: int, score: float, minutes_ago: int, **fields
) -> ScoreRound:
    return ScoreRound.objects.create(
        netuid=NETUID,
        validator_hotkey=validator,
        miner_uid=miner.uid,
        miner_hotkey=miner.hotkey,
        rank=rank,
        score=score,
        weight=fields.pop("weight", score),
        recorded_at=NOW - timedelta(minutes=minutes_ago),
        **fields,
    )


def test_the_leaderboard_ranks_miners_by_score_shows_penalties_and_puts_validators_last(local_chain):
    validator, (miner1, miner2, miner3) = local_chain
    other = chain.register_neuron(netuid=NETUID, hotkey="5Other", role=ChainNeuron.Role.VALIDATOR, stake=1.0)
    for hotkey, score1, score2 in (("5Validator", 0.2, 0.6), ("5Other", 0.4, 0.2)):
        MinerScore.objects.create(
            netuid=NETUID,
            validator_hotkey=hotkey,
            miner_uid=miner1.uid,
            miner_hotkey=miner1.hotkey,
            score=score1,
            answers=10,
            valid_answers=9,
        )
        MinerScore.objects.create(
            netuid=NETUID,
            validator_hotkey=hotkey,
            miner_uid=miner2.uid,
            miner_hotkey=miner2.hotkey,
            score=score2,
            answers=10,
            valid_answers=10,
        )
    chain.set_weights(netuid=NETUID, validator_hotkey="5Validator", weights={miner1.uid: 1, miner2.uid: 3})
    chain.set_weights(netuid=NETUID, validator_hotkey="5Other", weights={miner1.uid: 1})
    make_round(miner=miner1, validator="5Validator", rank=2, score=0.2, minutes_ago=5, problems={"too_slow": 2})
    make_round(miner=miner1, validator="5Other", rank=1, score=0.4, minutes_ago=5, problems={"too_slow": 1, "dup": 1})

    rows = list_leaderboard()

    assert [(row.position, row.neuron.uid) for row in rows] == [
        (1, miner2.uid),
        (2, miner1.uid),
        (3, miner3.uid),
        (4, validator.uid),
        (5, other.uid),
    ]
    assert [row.score for row in rows[:3]] == [pytest.approx(0.4), pytest.approx(0.3), None]
    assert rows[1].penalties == {"too_slow": 3, "dup": 1}
    assert (rows[1].answers, rows[1].valid_answers, rows[1].validity) == (20, 18, 0.9)
    # stake-weighted weights: 3/4 of 5Validator's (0.25, 0.75) plus 1/4 of 5Other's (1.0, 0)
    assert rows[1].weight == pytest.approx(0.75 * 0.25 + 0.25 * 1.0)
    assert rows[0].weight == pytest.approx(0.75 * 0.75)
    assert rows[3].weights_set_at is not None
    assert rows[1].as_json()["incentive"] is None  # the local chain gives no incentive
    assert rows[1].as_json()["penalties"] == {"too_slow": 3, "dup": 1}


def test_the_miner_report_gathers_validators_gateway_and_storefront(local_chain):
    _, (miner1, miner2, _) = local_chain
    make_round(
        miner=miner1,
        validator="5Validator",
        rank=2,
        score=0.1,
        minutes_ago=30,
        problems={"too_slow": 1},
        agreement=0.5,
        round_valid=1,
        latency_p50_ms=900,
        latency_p99_ms=2900,
    )
    make_round(
        miner=miner1,
        validator="5Validator",
        rank=1,
        score=0.3,
        minutes_ago=10,
        problems={"too_slow": 2},
        agreement=0.8,
        round_valid=3,
        latency_p50_ms=400,
        latency_p99_ms=1200,
    )
    make_round(miner=miner2, validator="5Validator", rank=1, score=0.5, minutes_ago=30)
    MinerScore.objects.create(
        netuid=NETUID,
        validator_hotkey="5Validator",
        miner_uid=miner1.uid,
        miner_hotkey=miner1.hotkey,
        score=0.3,
        answers=8,
        valid_answers=6,
    )
    store = StoreFactory.create()
    for status, code, latency in (("answered", "", 100), ("answered", "", 300), ("rejected", "unknown_sku", None)):
        NetworkRequest.objects.create(
            store=store,
            validator="http://v",
            status=status,
            error_code=code,
            miner_hotkey=miner1.hotkey,
            latency_ms=latency,
        )
    NetworkRequest.objects.create(store=store, validator="http://v", status="answered", miner_hotkey=miner2.hotkey)
    today = timezone.now().date()
    DailyRollup.objects.create(
        store=store,
        day=today,
        source="network",
        miner_hotkey=miner1.hotkey,
        views=5,
        add_to_carts=2,
        purchases=1,
        impressions=40,
        revenue=Decimal("12.50"),
    )
    DailyRollup.objects.create(store=store, day=today, source="network", miner_hotkey=miner2.hotkey, views=9)

    report = get_miner_report(hotkey=miner1.hotkey)

    assert (report.answers, report.valid_answers, report.validity) == (8, 6, 0.75)
    assert report.problems == {"too_slow": 3}
    assert report.agreement == pytest.approx((0.5 * 1 + 0.8 * 3) / 4)
    assert (report.latency_p50_ms, report.latency_p99_ms) == (400, 1200)  # the latest round
    assert report.gateway_requests == {"answered": 2, "rejected": 1, "failed": 0}
    assert report.gateway_rejections == {"unknown_sku": 1}
    assert (report.gateway_latency_p50_ms, report.gateway_latency_p99_ms) == (100, 300)
    assert report.attributed == {
        "impressions": 40,
        "clicks": 0,
        "views": 5,
        "add_to_carts": 2,
        "purchases": 1,
        "orders": 0,
        "revenue": Decimal("12.50"),
    }
    assert [(change.before, change.after, change.moved_up) for change in report.rank_changes] == [(2, 1, True)]
    assert report.charts["score"]["datasets"] == [{"label": "5Validator", "data": [0.1, 0.3], "spanGaps": True}]
    assert report.charts["attributed"]["labels"] == [today.isoformat()]
    assert report.charts["attributed"]["datasets"][2] == {"label": "Purchases", "data": [1]}
    assert report.has_rounds is True
    # the latest round that scored miner 1 is the one 10 minutes ago, where miner 2 has no row
    assert report.charts["distribution"]["labels"] == [f"uid {miner1.uid}"]
    assert report.charts["distribution"]["datasets"][0] == {"label": "You", "data": [0.3]}


def test_a_miner_without_any_figures_gets_an_empty_report(local_chain):
    report = get_miner_report(hotkey="5Nobody")

    assert (report.answers, report.validity, report.agreement, report.latency_p50_ms) == (0, None, None, None)
    assert report.attributed["revenue"] == Decimal("0")
    assert report.has_rounds is False


def test_the_validator_report_counts_requests_to_its_api_and_its_weights_over_time(local_chain):
    validator, (miner1, miner2, _) = local_chain
    chain.serve_axon(netuid=NETUID, hotkey=validator.hotkey, ip="127.0.0.1", port=9461)
    store = StoreFactory.create()
    for status, latency in (("answered", 200), ("answered", 400), ("failed", None)):
        NetworkRequest.objects.create(store=store, validator="http://127.0.0.1:9461", status=status, latency_ms=latency)
    NetworkRequest.objects.create(store=store, validator="http://elsewhere:1", status="answered", latency_ms=5)
    make_round(miner=miner1, validator=validator.hotkey, rank=1, score=0.6, minutes_ago=20, weight=0.6)
    make_round(miner=miner2, validator=validator.hotkey, rank=2, score=0.4, minutes_ago=20, weight=0.4)
    make_round(miner=miner1, validator=validator.hotkey, rank=1, score=0.7, minutes_ago=10, weight=0.7)
    chain.set_weights(netuid=NETUID, validator_hotkey=validator.hotkey, weights={miner1.uid: 0.7, miner2.uid: 0.3})

    neuron = get_neuron(hotkey=validator.hotkey)
    assert neuron is not None
    report = get_validator_report(neuron=neuron)

    assert neuron.role == "validator"
    assert report.api_url == "http://127.0.0.1:9461"
    assert report.requests == {"answered": 2, "rejected": 0, "failed": 1}
    assert (report.latency_p50_ms, report.latency_p99_ms) == (200, 400)
    assert report.weights == {miner1.uid: pytest.approx(0.7), miner2.uid: pytest.approx(0.3)}
    assert report.rounds == 2
    assert report.charts["weights"]["datasets"] == [
        {"label": f"uid {miner1.uid}", "data": [0.6, 0.7], "spanGaps": True},
        {"label": f"uid {miner2.uid}", "data": [0.4, None], "spanGaps": True},
    ]


def test_the_health_check_pings_a_real_validator_and_reports_a_dead_one(start_validator, settings):
    settings.BITRECS_API_KEY = "not-this-one"
    settings.BITRECS_VALIDATOR_API_KEYS = {"5Validator": API_KEY}
    server = start_validator()

    up = check_validator_health(url=server.url, hotkey="5Validator")
    refused = check_validator_health(url=server.url, hotkey="5Other")
    down = check_validator_health(url="http://127.0.0.1:9", hotkey="5Validator")

    assert (up.up, up.detail) == (True, "pong")
    assert up.latency_ms is not None
    assert (refused.up, refused.detail) == (False, "ApiKeyRejected: API key refused (401)")
    assert down.up is False
    assert down.detail.startswith("ValidatorUnavailable")


# ----------------------------------------------------------------------------------------- bittensor's chain


def metagraph() -> SimpleNamespace:
    axon = SimpleNamespace(ip="1.2.3.4", port=8091, is_serving=True)
    idle = SimpleNamespace(ip="0.0.0.0", port=0, is_serving=False)  # noqa: S104 - an axon that serves nothing
    return SimpleNamespace(
        block=5000,
        hotkeys=["5Val", "5Min"],
        coldkeys=["5ColdV", "5ColdM"],
        validator_permit=[True, False],
        axons=[idle, axon],
        S=[1000.0, 2.5],
        C=[0.0, 0.25],
        I=[0.0, 0.5],
        D=[0.75, 0.0],
        E=[1.5, 0.125],
        Tv=[0.875, 0.0],
        last_update=[4900, 3000],
    )


def test_neurons_from_a_metagraph_use_the_explorers_figures():
    assert neurons_from_metagraph(metagraph()) == [
        Neuron(
            uid=0,
            hotkey="5Val",
            coldkey="5ColdV",
            validator_permit=True,
            stake=1000.0,
            consensus=0.0,
            incentive=0.0,
            dividends=0.75,
            emission=1.5,
            validator_trust=0.875,
            updated=100,
            axon="",
        ),
        Neuron(
            uid=1,
            hotkey="5Min",
            coldkey="5ColdM",
            validator_permit=False,
            stake=2.5,
            consensus=0.25,
            incentive=0.5,
            dividends=0.0,
            emission=0.125,
            validator_trust=0.0,
            updated=2000,
            axon="1.2.3.4:8091",
        ),
    ]


@pytest.fixture
def subtensor(settings, monkeypatch):
    """bittensor's `Subtensor` replaced at the process boundary: `calls` counts the metagraph reads."""
    from subnet.protocol import bt

    settings.BITRECS_NETWORK = "finney"
    state = SimpleNamespace(calls=0, fail=False)

    class FakeSubtensor:
        def __init__(self, network: str) -> None:
            assert network == "finney"
            if state.fail:
                raise ConnectionError("no route")

        def metagraph(self, netuid: int, lite: bool) -> SimpleNamespace:
            state.calls += 1
            return metagraph()

    monkeypatch.setattr(bt, "Subtensor", FakeSubtensor)
    return state


def test_on_a_real_chain_the_role_is_the_validator_permit_and_the_metagraph_is_cached(db, subtensor):
    validator = get_neuron(hotkey="5Val")
    miner = get_neuron(hotkey="5Min")

    assert validator is not None and miner is not None
    assert (validator.role, miner.role, get_neuron(hotkey="5Gone")) == ("validator", "miner", None)
    assert subtensor.calls == 1


def test_an_unreachable_chain_is_chain_unavailable(db, subtensor):
    subtensor.fail = True

    with pytest.raises(ChainUnavailable, match="cannot read netuid 122 of the 'finney' chain: ConnectionError"):
        list_neurons()


def test_leaderboard_on_a_real_chain_orders_by_incentive_without_scores(db, subtensor):
    rows = list_leaderboard()

    assert [(row.neuron.hotkey, row.neuron.updated, row.updated_alert) for row in rows] == [
        ("5Min", 2000, True),
        ("5Val", 100, False),
    ]


def test_the_weight_distribution_shows_every_miner_of_the_latest_round_with_yours_apart(local_chain):
    _, (miner1, miner2, miner3) = local_chain
    make_round(miner=miner1, validator="5Validator", rank=1, score=0.5, minutes_ago=20, weight=0.5)
    for miner, weight in ((miner1, 0.25), (miner2, 0.75), (miner3, 0.0)):
        make_round(miner=miner, validator="5Validator", rank=1, score=weight, minutes_ago=5, weight=weight)

    chart = get_miner_report(hotkey=miner2.hotkey).charts["distribution"]

    assert chart["labels"] == [f"uid {miner1.uid}", f"uid {miner2.uid}", f"uid {miner3.uid}"]
    assert chart["datasets"] == [
        {"label": "You", "data": [None, 0.75, None]},
        {"label": "Other miners", "data": [0.25, None, 0.0]},
    ]
