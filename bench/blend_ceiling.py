"""How far reweighting the engine's signals could go: the best blend fitted on the evaluated targets themselves.

    .venv/bin/python -m bench.blend_ceiling [--files PATH ...] [--baseline NAME=NDCG ...]

On evaluate_recs's protocol and production build (evaluation.load_catalog_through_import, self-tuning off), every
evaluated case is scored the way self-tuning scores its validation cases (tuning.py: the case's candidate pool, the
text cosine and each order signal per history item, the priors), and the settings of tuning.TUNING_GRID (with more
session decays) are searched by coordinate ascent to maximise the NDCG@10 of the evaluated targets themselves, for
both normalisations of the order signals. That is an oracle: it sees the answers, so no store's own validation can
choose better settings from this grid. If its NDCG stays below an aim, reweighting these signals cannot reach the
aim; a new signal (or better text) must. Each case is scored on a pool as wide as serving's, and a target outside
serving's pool scores 0 whatever the settings: narrower pools with the target added flatter some settings (a
hubness penalty of 0.8 instead of 0.3 looked like +68 % on amazon_office_sample_5000 in pools of 10 neighbours per
item, measured with a variant of this script, and is -36 % when served: 0.0329 against 0.0514). Printed per file:
the defaults and the oracle on those pools (close to the served figures, not equal: the order signals' rows are cut
by rank as tuning cuts them), the settings it moved, and with --baseline the oracle as a multiple of that NDCG.
Needs `manage.py migrate` once (SQLite).
"""

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality_check import DATA, FILES

ROUNDS = 4
# Pools as wide as serving's (50 text neighbours per history item, 50 bestsellers): the target competes with what
# serving would rank it against; a target outside serving's pool scores 0 whatever the settings (tuning._Pool).
SERVING_WIDTH = 50
DECAYS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def evaluated_store(path: Path, config: Any) -> tuple[Any, list[Any], list[Any], list[Any]]:
    """evaluate_recs's store for a file: (engine built through the import with the training orders, those orders
    indexed, the evaluated cases, those cases as tuning.Case over item ids, history most recent first)."""
    from recommendations import evaluation as ev
    from recommendations.engine import tuning as t
    from recommendations.engine.behaviour import Order, index_orders

    interactions = ev.read_interactions(path)
    cases = ev.build_cases(interactions)
    orders = ev.training_orders(interactions, cases)
    engine, _ = ev.load_catalog_through_import(path, config=config, orders=orders)
    index = engine._index
    indexed = index_orders([Order(customer=o.user_id, when=o.timestamp / 1000.0, items=o.items) for o in orders], index)
    scored = [
        t.Case(
            history=tuple(index[x] for x in reversed(case.history) if x in index)[: config.max_history + 1],
            target=index[case.target],
            customer=c,
        )
        for c, case in enumerate(cases)
        if case.target in index and any(x in index for x in case.history)
    ]
    return engine, indexed, cases, scored


def serving_pools(engine: Any, config: Any, cases: list[Any], behaviour: Any, blocked: Any) -> list[Any]:
    """tuning._build_pools for cases at serving's widths, on the engine's text and these order signals."""
    from recommendations.engine import tuning as t
    from recommendations.engine.behaviour import scaled_popularity, scaled_trending

    return t._build_pools(
        cases=cases,
        matrix=engine._matrix,
        neighbour_ids=engine._neighbour_ids,
        blocked=blocked,
        behaviour=behaviour,
        hub=engine._hub,
        popularity=scaled_popularity(behaviour.popularity),
        trending=scaled_trending(behaviour.trending),
        serving_per_row=int(config.copurchase_neighbours),
        per_source=SERVING_WIDTH,
    )


def ceiling(path: Path) -> list[dict[str, Any]]:
    from recommendations.engine import EngineConfig
    from recommendations.engine import tuning as t
    from recommendations.engine.behaviour import build_behaviour
    from recommendations.engine.core import blocked_by_history

    config = EngineConfig(self_tune=False)
    engine, indexed, cases, scored = evaluated_store(path, config)
    blocked = blocked_by_history(
        engine.items,
        scored,
        neighbour_ids=engine._neighbour_ids,
        neighbour_sims=engine._neighbour_sims,
        threshold=config.history_near_duplicate,
    )
    grid = {**t.TUNING_GRID, "recency_decay": DECAYS}
    results = []
    for alpha in t.TUNING_ALPHAS:
        behaviour = build_behaviour(indexed, n=len(engine.items), alpha=alpha)
        pools = serving_pools(engine, config, scored, behaviour, blocked)
        flat = t._FlatPools(pools, hub_penalty=config.hub_penalty, scale=config.behaviour_scale)
        start = {field: getattr(config, field) for field in t._SETTINGS}

        def mean(settings: dict[str, Any], flat: t._FlatPools = flat) -> float:
            # Every evaluated case counts (one whose target serving can never show scores 0), as evaluate_recs.
            return float(flat.ndcg(settings).sum()) / len(cases)

        current, best = dict(start), mean(start)
        default = best
        for _ in range(ROUNDS):
            changed = False
            for field, levels in grid.items():
                for level in levels:
                    value = mean({**current, field: level})
                    if value > best + 1e-12:
                        best, current, changed = value, {**current, field: level}, True
            if not changed:
                break
        moved = {field: value for field, value in current.items() if start[field] != value}
        results.append({"alpha": alpha, "default": default, "oracle": best, "moved": moved})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", type=Path, default=[DATA / f for f in FILES])
    parser.add_argument(
        "--baseline", nargs="*", default=[], help="FILE_STEM=NDCG: print the oracle as a multiple of it"
    )
    args = parser.parse_args(argv)
    baselines = {stem: float(value) for stem, value in (item.split("=", 1) for item in args.baseline)}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")
    import django

    django.setup()
    np.seterr(all="ignore")
    for path in args.files:
        print(path.stem, flush=True)
        for row in ceiling(path):
            ratio = f" = {row['oracle'] / baselines[path.stem]:.2f}x the baseline" if path.stem in baselines else ""
            print(
                f"  alpha {row['alpha']}: defaults {row['default']:.4f}, oracle {row['oracle']:.4f}{ratio}; "
                f"moved {row['moved']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
