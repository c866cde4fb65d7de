"""A tiny run of bench/incentive_sim.py (issue 15's simulation), in its own process with its own database."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("subnet.protocol", exc_type=ImportError)

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_simulation_pays_the_good_miners_and_nothing_for_malformed_answers():
    run = subprocess.run(
        [sys.executable, "-m", "bench.incentive_sim", "--quick", "--rounds", "45", "--json", "--port-base", "9270"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    rows = {row["miner"]: row for row in result["miners"]}
    weights = {name: row["weight_new"] for name, row in rows.items()}
    assert (result["rounds"], result["live_requests"] + result["probes"]) == (45, 45)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert weights["invalid"] == 0.0
    # the same answers 2.5 s later earn the same quality and a smaller speed bonus
    assert rows["good"]["probe_ndcg_seen"] == rows["slow-good"]["probe_ndcg_seen"] > 0
    assert weights["good"] > weights["slow-good"]
    # the pool without a ranking (in order, or at random) earns less than ranking it well, even slowly
    assert weights["slow-good"] > max(weights["lazy"], weights["random"], weights["copycat"])
    # today's formula on the same answers pays the fast lazy miner more than the slow good one
    assert result["checks_today"]["slow-good>lazy"] is False
