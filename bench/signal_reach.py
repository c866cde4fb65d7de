"""Which signal could have ranked each evaluated target: a diagnosis before adding or reweighting a signal.

    .venv/bin/python -m bench.signal_reach [--files PATH ...] [--k 10]

On evaluate_recs's protocol and production build (evaluation.load_catalog_through_import, EngineConfig defaults,
self-tuning off), each signal ranks the whole catalog alone for every case: the text cosine to the history
(recency_decay weights, no hubness correction), each item-item order signal summed over the history
(behaviour_decay weights), popularity and trending. Reported per signal: the share of targets it scores at all, the
share in its top k, and the share in its top k that the engine misses; then the share of targets in the union of
several signals' top k (what a blend reaches by taking each signal's best; it goes beyond that only by lifting
targets no signal ranks in its own top k), and at k/2 (two signals sharing one list). Reads the built engine's
arrays (a diagnostic, not an API). Needs `manage.py migrate` once (SQLite).
"""

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.quality_check import DATA, FILES

UNIONS = (
    ("text",),
    ("text", "basket"),
    ("text", "basket", "customer", "sequence"),
    ("text", "basket", "customer", "sequence", "linear"),
    ("text", "basket", "customer", "sequence", "linear", "popularity", "trending"),
)


def _rank(scores: np.ndarray, target: int, history: list[int]) -> int | None:
    """0-based rank of target among the non-history items, None when the signal gives it nothing."""
    if scores[target] <= 0:
        return None
    s = scores.copy()
    s[history] = -np.inf
    return int((s > s[target]).sum())


def reach(path: Path, k: int) -> dict[str, Any]:
    from recommendations import evaluation as ev
    from recommendations.engine import EngineConfig

    interactions = ev.read_interactions(path)
    cases = ev.build_cases(interactions)
    orders = ev.training_orders(interactions, cases)
    engine, _ = ev.load_catalog_through_import(path, config=EngineConfig(self_tune=False), orders=orders)
    config, signals, matrix, index = engine.config, engine._signals, engine._matrix, engine._index
    ranker = ev.engine_ranker(engine, k=k)
    item_signals = {
        "basket": signals.copurchase,
        "customer": signals.customer,
        "sequence": signals.sequence,
        "linear": signals.linear,
    }
    rows: list[dict[str, int | None]] = []
    for case in cases:
        history = [index[x] for x in reversed(case.history) if x in index][: config.max_history + 1]
        target = index.get(case.target)
        if target is None or not history:
            continue
        top = ranker(case)
        row: dict[str, int | None] = {"engine": top.index(case.target) if case.target in top else None}
        w = config.recency_decay ** np.arange(len(history))
        query = sp.csr_matrix((w / w.sum()).astype(np.float32)) @ matrix[history]
        row["text"] = _rank(np.asarray((matrix @ query.T).todense()).ravel(), target, history)
        v = config.behaviour_decay ** np.arange(len(history))
        v = sp.csr_matrix(v / v.sum())
        for name, m in item_signals.items():
            row[name] = _rank(np.asarray((v @ m[history]).todense()).ravel(), target, history)
        row["popularity"] = _rank(signals.popularity, target, history)
        row["trending"] = _rank(signals.trending, target, history)
        rows.append(row)
    n = max(len(rows), 1)

    def within(row: dict[str, int | None], key: str, limit: int) -> bool:
        rank = row[key]
        return rank is not None and rank < limit

    out: dict[str, Any] = {"cases": len(rows), "signals": {}, "unions": {}}
    for key in ("engine", "text", *item_signals, "popularity", "trending"):
        out["signals"][key] = {
            "scored": sum(r[key] is not None for r in rows) / n,
            f"top{k}": sum(within(r, key, k) for r in rows) / n,
            f"top{k}_engine_misses": sum(within(r, key, k) and r["engine"] is None for r in rows) / n,
        }
    for combo in UNIONS:
        out["unions"][" + ".join(combo)] = {
            f"top{k}": sum(any(within(r, c, k) for c in combo) for r in rows) / n,
            f"top{k // 2}": sum(any(within(r, c, k // 2) for c in combo) for r in rows) / n,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", type=Path, default=[DATA / f for f in FILES])
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    for path in args.files:
        result = reach(path, args.k)
        print(f"{path.stem} ({result['cases']} cases)")
        for key, figures in result["signals"].items():
            print(f"  {key:11s} " + "  ".join(f"{name} {value:.3f}" for name, value in figures.items()))
        for key, figures in result["unions"].items():
            print(f"  union {key}: " + "  ".join(f"{name} {value:.3f}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
