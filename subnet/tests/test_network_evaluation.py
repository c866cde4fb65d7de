"""Issue 13's network path: evaluate_recs's cases through a local validator and offline miners, constructed store."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.network_evaluation import run_network_evaluation

# Each shopper looks at the first product of a pair and buys its namesake: the offline reference miner (name
# similarity over the request's catalog) ranks the bought product first by construction.
PAIRS = [
    ("CUSH-1", "Crimson Velvet Cushion", "CUSH-2", "Crimson Velvet Cushion Cover"),
    ("BENCH-1", "Oak Garden Bench", "BENCH-2", "Oak Garden Bench Seat"),
    ("KETTLE-1", "Glass Tea Kettle", "KETTLE-2", "Glass Tea Kettle Lid"),
    ("LAMP-1", "Brass Reading Lamp", "LAMP-2", "Brass Reading Lamp Shade"),
]
PORTS = [9290, 9291, 9292]  # the validator's, then the two miners' (this helper's port range)
# The command's test starts its own network on other ports: an axon stopped by the test before may not have let go of
# its port yet (CI once logged "address already in use" for 9291 there).
COMMAND_PORT_BASE = 9295


def record(user: str, sku: str, title: str, when: int) -> dict:
    return {
        "user_id": user,
        "parent_asin": sku,
        "timestamp": when,
        "metadata": {"title": title, "price": "4.50", "main_category": "Home"},
    }


@pytest.fixture
def interactions(tmp_path):
    records = []
    for number, (query, query_title, bought, bought_title) in enumerate(PAIRS):
        records += [record(f"u{number}", query, query_title, 1000), record(f"u{number}", bought, bought_title, 2000)]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.mark.django_db
def test_the_network_path_is_scored_on_the_evaluations_cases_beside_the_pools_limits(interactions):
    result = run_network_evaluation(path=interactions, k=3, miners=2, ports=PORTS)

    # every shopper's purchase came back first from the network: NDCG@3 and HR@3 of 1
    assert (result.network.users, result.network.hit_rate, result.network.ndcg) == (4, 1.0, 1.0)
    assert result.failures == {}
    # eight products, fewer than a pool: every pool holds all seven others, the purchase among them
    assert result.pool_recall == 1.0
    # a pick knowing only the pool: the purchase at each of the 3 ranks with chance 1/7
    assert result.pool_chance_ndcg == pytest.approx((1 + 0.6309298 + 0.5) / 7)
    assert (result.engine.users, result.engine_query_only.users, result.miners) == (4, 4, 2)
    # the throwaway store is gone
    from merchants.models import Store

    assert not Store.objects.filter(domain__startswith="evaluate-network-").exists()


@pytest.mark.django_db
def test_the_command_prints_the_tables_as_json_and_refuses_bad_options(interactions):
    out = StringIO()

    call_command(
        "evaluate_network",
        "--interactions",
        str(interactions),
        "--k",
        "3",
        "--miners",
        "2",
        "--limit",
        "2",
        "--port-base",
        str(COMMAND_PORT_BASE),
        "--no-progress",
        stdout=out,
    )

    printed = json.loads(out.getvalue())
    assert {key: printed["network"][key] for key in ("hit_rate@3", "ndcg@3", "users")} == {
        "hit_rate@3": 1.0,
        "ndcg@3": 1.0,
        "users": 2,
    }
    assert printed["pool"] == {"recall": 1.0, "chance_ndcg@3": 0.3044, "size": 60}
    assert (printed["failures"], printed["miners"]) == ({}, 2)
    with pytest.raises(CommandError, match="--k must be 1 to 20"):
        call_command("evaluate_network", "--interactions", str(interactions), "--k", "21")
    with pytest.raises(CommandError, match="No such file"):
        call_command("evaluate_network", "--interactions", str(interactions) + ".missing", "--no-progress")
