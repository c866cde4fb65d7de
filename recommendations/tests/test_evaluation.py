import json
import math
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog_sync.models import Product
from merchants.models import Store
from recommendations.evaluation import (
    EvalCase,
    Interaction,
    Model,
    build_cases,
    evaluate_rankings,
    hit_at_k,
    ndcg_at_k,
    read_interactions,
    run_evaluation,
    training_counts,
)

TINY = Path(__file__).parent / "data" / "tiny_interactions.json"
SHARED_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "interactions" / "amazon_office"


def test_ndcg_and_hit_on_hand_computed_ranks():
    assert ndcg_at_k(0, 10) == 1.0
    assert ndcg_at_k(2, 10) == 0.5
    assert ndcg_at_k(1, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(None, 10) == 0.0
    assert ndcg_at_k(10, 10) == 0.0
    assert hit_at_k(0, 10) == 1.0
    assert hit_at_k(9, 10) == 1.0
    assert hit_at_k(10, 10) == 0.0
    assert hit_at_k(None, 10) == 0.0


def test_evaluate_rankings_counts_hits_gain_and_coverage():
    cases = [
        EvalCase(user_id="u1", history=("a",), target="b"),
        EvalCase(user_id="u2", history=("b",), target="c"),
        EvalCase(user_id="u3", history=("c",), target="d"),
    ]
    rankings = [["b", "x"], ["x", "y", "c"], ["x", "y"]]

    result = evaluate_rankings(cases, rankings, catalog_size=10, k=3)

    assert result.as_dict() == {"hit_rate@3": 0.6667, "ndcg@3": 0.5, "coverage@3": 0.4, "users": 3}


def test_build_cases_sorts_by_time_then_file_order_and_keeps_first_of_repeats():
    # given: the tiny file (u1 repeats A, u2 and u4 have equal timestamps, u3 has one distinct item)
    interactions = read_interactions(TINY)

    cases = build_cases(interactions)

    assert cases == [
        EvalCase(user_id="u1", history=("PA", "PB"), target="PC"),
        EvalCase(user_id="u2", history=("PD",), target="PE"),
        EvalCase(user_id="u4", history=("PH", "PG"), target="PA"),
    ]


def test_training_counts_leave_out_every_held_out_target():
    interactions = read_interactions(TINY)
    cases = build_cases(interactions)

    counts = training_counts(interactions, cases)

    assert counts == {"PA": 1, "PB": 1, "PD": 1, "PF": 1, "PH": 1, "PG": 1}


def test_build_cases_skips_users_with_one_distinct_item():
    interactions = [
        Interaction(user_id="u", item_id="x", timestamp=1, position=0),
        Interaction(user_id="u", item_id="x", timestamp=2, position=1),
    ]

    assert build_cases(interactions) == []


@pytest.mark.django_db
def test_popularity_baseline_on_tiny_file_gives_hand_computed_numbers():
    # Training counts: A, B, D, F, H, G once each, C and E never; ties rank in catalog (import) order:
    # A B D F H G C E.  u1 (minus A, B): D F H G C -> C at rank 4; u2 (minus D): A B F H G -> miss;
    # u4 (minus H, G): A ... -> A at rank 0.  Shown: D F H G C A B = 7 of 8 items.
    result = run_evaluation(path=TINY, k=5, model=Model.POPULARITY)

    assert result.as_dict() == {
        "hit_rate@5": round(2 / 3, 4),
        "ndcg@5": round((1 / math.log2(6) + 1.0) / 3, 4),
        "coverage@5": 0.875,
        "users": 3,
    }


@pytest.mark.django_db
def test_engine_ranks_the_obvious_next_item_first_and_leaves_no_store_behind():
    stores_before = Store.objects.count()

    result = run_evaluation(path=TINY, k=1, model=Model.ENGINE)

    # u1's query is the ruled A5 notebook: the dotted A5 notebook is the one obvious next item. u2 and u4
    # have no text match to their targets, so k=1 gives exactly one hit out of three.
    assert result.as_dict()["hit_rate@1"] == round(1 / 3, 4)
    assert result.users == 3
    assert Store.objects.count() == stores_before
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_evaluate_recs_prints_one_json_object_with_the_metric_keys():
    out = StringIO()

    call_command("evaluate_recs", "--interactions", str(TINY), "--json", "--no-progress", stdout=out)

    payload = json.loads(out.getvalue())
    assert set(payload) == {"hit_rate@10", "ndcg@10", "coverage@10", "users", "serving"}
    assert payload["serving"] == "engine"
    assert payload["users"] == 3


@pytest.mark.django_db
def test_evaluate_recs_baseline_option_and_k():
    out = StringIO()

    call_command(
        "evaluate_recs",
        "--interactions",
        str(TINY),
        "--k",
        "5",
        "--baseline",
        "popularity",
        "--no-progress",
        stdout=out,
    )

    assert json.loads(out.getvalue()) == {"hit_rate@5": 0.6667, "ndcg@5": 0.4623, "coverage@5": 0.875, "users": 3}


@pytest.mark.django_db
def test_same_input_gives_the_same_numbers():
    first = run_evaluation(path=TINY, k=3)
    second = run_evaluation(path=TINY, k=3)

    assert first == second


@pytest.mark.django_db
@pytest.mark.skipif(not (SHARED_SAMPLE / "amazon_office_sample_1000.json").exists(), reason="needs ../shared/data")
def test_engine_beats_the_tfidf_baselines_on_the_shared_1000_sample():
    path = SHARED_SAMPLE / "amazon_office_sample_1000.json"

    engine = run_evaluation(path=path, model=Model.ENGINE)
    history = run_evaluation(path=path, model=Model.TFIDF_HISTORY)
    single = run_evaluation(path=path, model=Model.TFIDF)

    assert engine.users == 153
    assert engine.ndcg > max(history.ndcg, single.ndcg)
    assert engine.hit_rate > max(history.hit_rate, single.hit_rate)


def test_user_fold_is_a_fixed_split():
    from recommendations.evaluation import user_fold

    folds = [user_fold(f"user-{i}") for i in range(200)]

    assert folds == [user_fold(f"user-{i}") for i in range(200)]
    assert 60 < sum(folds) < 140


@pytest.mark.django_db
def test_heldout_protocol_scores_each_half_with_settings_from_the_other():
    from recommendations.evaluation import run_heldout_evaluation, user_fold

    grid = ({"recency_decay": 0.7, "hub_penalty": 0.3}, {"recency_decay": 0.5, "hub_penalty": 0.0})

    result = run_heldout_evaluation(path=TINY, k=3, grid=grid)
    again = run_heldout_evaluation(path=TINY, k=3, grid=grid)

    assert result == again
    assert result.pooled.users == 3
    assert sum(f.users for f in result.folds) == 3
    assert all(choice in grid for choice in result.chosen)
    assert {user_fold(u) for u in ("u1", "u2", "u4")} <= {0, 1}
    payload = result.as_dict()
    assert set(payload) == {"heldout", "folds", "default"}


@pytest.mark.django_db
def test_evaluate_recs_heldout_option_prints_json():
    out = StringIO()

    call_command("evaluate_recs", "--interactions", str(TINY), "--heldout", "--no-progress", stdout=out)

    payload = json.loads(out.getvalue())
    assert payload["heldout"]["users"] == 3
