"""Experiments: sticky weighted assignment, team-draft interleaving, and the reads serving uses."""

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from merchants.exceptions import InvalidRequest
from merchants.tests.factories import StoreFactory
from recommendations.experiments import (
    ArmChoice,
    Pick,
    WidgetSettings,
    assign_arm,
    check_weights,
    clear_experiment_cache,
    get_arm,
    get_widget_settings,
    interleaving_preference,
    team_draft_interleave,
)
from recommendations.models import Experiment, PlacementSettings
from recommendations.services.experiments import start_experiment, stop_experiment


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_experiment_cache()
    yield
    clear_experiment_cache()


# --- assignment ----------------------------------------------------------------------------------------------


def test_assignment_is_sticky_and_depends_on_store_experiment_and_session() -> None:
    weights = {"network": 1, "local": 1}
    arms = {assign_arm(store_id=1, experiment_id=7, session_id=f"s{n}", weights=weights) for n in range(50)}

    assert arms == {"network", "local"}
    assert assign_arm(store_id=1, experiment_id=7, session_id="s1", weights=weights) == assign_arm(
        store_id=1, experiment_id=7, session_id="s1", weights=weights
    )
    sessions = [f"visitor-{n}" for n in range(200)]
    first = [assign_arm(store_id=1, experiment_id=7, session_id=s, weights=weights) for s in sessions]
    other_experiment = [assign_arm(store_id=1, experiment_id=8, session_id=s, weights=weights) for s in sessions]
    other_store = [assign_arm(store_id=2, experiment_id=7, session_id=s, weights=weights) for s in sessions]
    assert first != other_experiment
    assert first != other_store


def test_assignment_follows_the_weights() -> None:
    weights = {"network": 45, "local": 45, "holdout": 10}

    counts = Counter(
        assign_arm(store_id=3, experiment_id=1, session_id=f"sess-{n}", weights=weights) for n in range(20_000)
    )

    # 20,000 draws: each share within 1.5 points of its weight (more than 4 standard deviations for holdout).
    assert set(counts) == {"network", "local", "holdout"}
    assert abs(counts["holdout"] / 20_000 - 0.10) < 0.015
    assert abs(counts["network"] / 20_000 - 0.45) < 0.015


def test_an_arm_with_weight_zero_is_never_assigned() -> None:
    weights = {"network": 0, "interleave": 5}

    assert {assign_arm(store_id=1, experiment_id=1, session_id=f"s{n}", weights=weights) for n in range(100)} == {
        "interleave"
    }


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "give at least one arm a weight"),
        ({"network": 0}, "at least one arm needs a weight above 0"),
        ({"magic": 5}, "'magic' is not an arm"),
        ({"network": -1}, "whole number from 0 to 10000"),
        ({"network": 1.5}, "whole number from 0 to 10000"),
        ({"network": True}, "whole number from 0 to 10000"),
        ({"network": 10**9}, "whole number from 0 to 10000"),
    ],
)
def test_bad_weights_are_refused_with_a_reason(weights: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_weights(weights)


# --- interleaving --------------------------------------------------------------------------------------------


def test_team_draft_alternates_fairly_and_never_repeats_an_item() -> None:
    picks = team_draft_interleave(network=["a", "b", "c", "d"], local=["b", "e", "a", "f"], limit=6, seed="s1")

    items = [p.item for p in picks]
    teams = [p.team for p in picks]
    assert len(items) == len(set(items)) == 6
    # Team draft: after every second pick both teams have placed the same number of cards.
    for end in (2, 4, 6):
        assert teams[:end].count("network") == teams[:end].count("local")
    # Each team's picks come in its own list's order.
    network_picks = [p.item for p in picks if p.team == "network"]
    local_picks = [p.item for p in picks if p.team == "local"]
    assert network_picks == sorted(network_picks, key=["a", "b", "c", "d"].index)
    assert local_picks == sorted(local_picks, key=["b", "e", "a", "f"].index)


def test_team_draft_is_the_published_algorithm() -> None:
    # Radlinski et al. 2008, team draft, by hand: round 1 the coin picks who goes first, and the winner takes its
    # best item (network "a", local "b"); the other team then takes its best item not shown ("b" or "a" is gone
    # for one of them). Round 2 the same with the next coin: network "c", local "d".
    coin = random.Random(hashlib.sha256(b"fixed").digest())
    network_first = [coin.random() < 0.5, coin.random() < 0.5]
    round_one = [("a", "network"), ("b", "local")] if network_first[0] else [("b", "local"), ("a", "network")]
    round_two = [("c", "network"), ("d", "local")] if network_first[1] else [("d", "local"), ("c", "network")]

    picks = team_draft_interleave(network=["a", "b", "c"], local=["b", "d", "e"], limit=4, seed="fixed")

    assert [(p.item, p.team) for p in picks] == round_one + round_two
    assert picks == team_draft_interleave(network=["a", "b", "c"], local=["b", "d", "e"], limit=4, seed="fixed")


def test_team_draft_fills_from_the_other_list_when_one_runs_out() -> None:
    picks = team_draft_interleave(network=["a"], local=["b", "c", "d"], limit=4, seed="x")

    assert sorted(p.item for p in picks) == ["a", "b", "c", "d"]
    assert [p.team for p in picks].count("network") == 1


def test_team_draft_uses_the_key_to_tell_items_apart() -> None:
    picks = team_draft_interleave(
        network=[("A", 0.9), ("B", 0.8)], local=[("A", 0.5), ("C", 0.4)], limit=3, seed="k", key=lambda x: x[0]
    )

    assert sorted(p.item[0] for p in picks) == ["A", "B", "C"]
    assert all(isinstance(p, Pick) for p in picks)


def test_the_coin_is_fair_over_many_pages() -> None:
    firsts = Counter(
        team_draft_interleave(network=["a"], local=["b"], limit=1, seed=f"page-{n}")[0].team for n in range(4000)
    )

    assert abs(firsts["network"] / 4000 - 0.5) < 0.04


def test_an_impression_prefers_the_team_with_more_clicks() -> None:
    assert interleaving_preference(clicks=["network", "local", "network"]) == "network"
    assert interleaving_preference(clicks=["local"]) == "local"
    assert interleaving_preference(clicks=["local", "network"]) is None
    assert interleaving_preference(clicks=[]) is None


# --- the running experiment and placement settings ------------------------------------------------------------


@pytest.mark.django_db
def test_a_running_experiment_assigns_consenting_visitors_and_gives_others_the_default_uncounted() -> None:
    store = StoreFactory.create()
    assert get_arm(store_id=store.id, session_id="sess-1") is None  # nothing runs

    experiment = start_experiment(store=store, name="Network vs local", weights={"network": 1, "local": 1})

    choice = get_arm(store_id=store.id, session_id="sess-12345678")
    expected = assign_arm(
        store_id=store.id, experiment_id=experiment.id, session_id="sess-12345678", weights={"network": 1, "local": 1}
    )
    assert choice == ArmChoice(arm=expected, experiment_id=experiment.id, counted=True)
    assert get_arm(store_id=store.id, session_id="") == ArmChoice(
        arm="network", experiment_id=experiment.id, counted=False
    )

    stop_experiment(experiment=experiment)
    assert get_arm(store_id=store.id, session_id="sess-12345678") is None


@pytest.mark.django_db
def test_starting_an_experiment_stops_the_running_one_and_bad_input_is_a_400() -> None:
    store = StoreFactory.create()
    first = start_experiment(store=store, name="A", weights={"network": 1})
    second = start_experiment(store=store, name="B", weights={"local": 1, "holdout": 1}, default_arm="local")

    first.refresh_from_db()
    assert (first.status, second.status) == (Experiment.Status.STOPPED, Experiment.Status.RUNNING)
    assert second.weights == {"local": 1, "holdout": 1}
    with pytest.raises(InvalidRequest, match="not an arm"):
        start_experiment(store=store, name="C", weights={"nope": 1})
    with pytest.raises(InvalidRequest, match="default_arm"):
        start_experiment(store=store, name="C", weights={"local": 1}, default_arm="nope")


@pytest.mark.django_db
def test_placement_settings_default_and_stored() -> None:
    store = StoreFactory.create()
    PlacementSettings.objects.create(store=store, placement="cart", title="", count=6, layout="row")

    assert get_widget_settings(store_id=store.id, placement="product") == WidgetSettings(
        title="You may also like", layout="grid", count=4, anonymous_events=True
    )
    assert get_widget_settings(store_id=store.id, placement="cart").as_dict() == {
        "title": "Goes well with your cart",
        "layout": "row",
        "count": 6,
        "anonymous_events": True,
    }
