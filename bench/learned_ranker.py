"""Would a learned ranker beat the linear blend? A per-store model trained on self-tuning's own cases, scored on the
evaluated targets, against the default blend on the same candidate pools.

    .venv/bin/python -m bench.learned_ranker [--files PATH ...] [--shuffle-labels]

For each file, on evaluate_recs's protocol (bench.blend_ceiling.evaluated_store): the store's validation cases are built
by self-tuning's own core.validation_folds (two folds of the most recent customers, each customer's last tune_holdouts
new items held out, the order signals rebuilt without them), and the evaluated cases on the signals of the whole
training part. Every case's candidates get the features self-tuning already computes (tuning._FlatPools at serving's
widths: the text cosine at three session decays and its maximum over the history, each order signal's decayed value,
best row rank and count of history items naming the candidate, the hubness, popularity and trending priors, the history
length). Two models are fitted on the validation cases whose target serving's pool holds: a logistic regression and
scikit-learn's HistGradientBoostingClassifier (pointwise, a candidate is the target or not), and the evaluated cases are
ranked by them. Printed per file: NDCG@10 of the default blend and of each model on the evaluated cases (a target
outside serving's pool scores 0, and every evaluated case counts, as in evaluate_recs); and the check a store could make
on its own: each half of its validation customers ranked by a model fitted on the other half, against the blend, adopted
only at tuning.SIGNIFICANCE standard errors (as self-tuning adopts a setting). Nothing of the evaluated targets is seen
in training. --shuffle-labels moves each training label to a random candidate of its pool: a model that still gains then
would be reading the pools, not learning the store.

This measures candidate pools, not the served path (the figures differ a little from evaluate_recs's); serving a
learned ranker is not built. Needs `manage.py migrate` once (SQLite).
"""

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.blend_ceiling import evaluated_store, serving_pools
from bench.quality_check import DATA, FILES


def features(flat: Any, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """One row per candidate of every pool (tuning._FlatPools), and whether it is its pool's target."""
    from recommendations.engine import tuning as t

    decay, behaviour_decay = float(config.recency_decay), float(config.behaviour_decay)
    k = float(config.copurchase_neighbours)
    columns = [flat._part("text", d, 0.0) for d in (decay, 1.0, 0.3)] + [flat.text.max(axis=1)]
    for name in t._BEHAVIOUR:
        ranks = flat.ranks[name]
        best = np.where(ranks > 0, ranks, np.inf).min(axis=1)
        columns += [
            flat._part(name, behaviour_decay, k),
            np.where(np.isfinite(best), 1.0 / best, 0.0),
            (flat.values[name] > 0).sum(axis=1),
        ]
    columns += [flat.hub, flat.popularity, flat.trending, flat.lengths[flat.owner]]
    x = np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=1)
    y = np.zeros(len(x), dtype=np.int8)
    y[flat.target_rows] = 1
    return x, y


def _gbdt() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0, random_state=0
    )


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


# Each model by name, made afresh for every fit.
MODELS = {"logistic": _logistic, "gbdt": _gbdt}


def _fit_and_score(model: Any, train: Any, test: Any, config: Any, *, shuffle_labels: bool = False) -> np.ndarray:
    """Fit model on train's pools (those whose target serving can show) and return the NDCG@10 of test's targets."""
    x_train, y_train = features(train, config)
    if shuffle_labels:
        rng = np.random.default_rng(0)
        sizes = np.diff(np.append(train.starts, len(y_train)))
        y_train = np.zeros_like(y_train)
        y_train[train.starts + (rng.random(train.n) * sizes).astype(np.int64)] = 1
    keep = train.reachable[train.owner]  # a target serving cannot show teaches nothing about ranking
    mean, spread = x_train[keep].mean(axis=0), x_train[keep].std(axis=0) + 1e-6
    model.fit((x_train[keep] - mean) / spread, y_train[keep])
    x_test, _ = features(test, config)
    return np.asarray(test.ndcg_of(model.predict_proba((x_test - mean) / spread)[:, 1].astype(np.float64)))


def compare(path: Path, *, shuffle_labels: bool = False) -> dict[str, Any]:
    """The file's figures: per model, NDCG@10 on the evaluated cases, and the cross-fitted check self-tuning would
    make on the validation cases alone (each half of the customers scored by a model fitted on the other half,
    against the default blend, at tuning.SIGNIFICANCE standard errors)."""
    from recommendations.engine import EngineConfig
    from recommendations.engine import tuning as t
    from recommendations.engine.behaviour import build_behaviour
    from recommendations.engine.core import blocked_by_history, validation_folds

    config = EngineConfig(self_tune=False)
    engine, indexed, cases, scored = evaluated_store(path, config)
    n = len(engine.items)
    folds = validation_folds(indexed, n=n, now=None, config=config)
    assert folds is not None, f"{path.stem}: too few customers with two or more items to validate on"
    every = [*folds[2], *scored]
    blocked = blocked_by_history(
        engine.items,
        every,
        neighbour_ids=engine._neighbour_ids,
        neighbour_sims=engine._neighbour_sims,
        threshold=config.history_near_duplicate,
    )

    def flat(pools: list[Any]) -> Any:
        return t._FlatPools(pools, hub_penalty=config.hub_penalty, scale=config.behaviour_scale)

    validation = [
        pool
        for fold_cases, behaviour in folds[0]
        for pool in serving_pools(engine, config, fold_cases, behaviour, blocked)
    ]
    train = flat(validation)
    signals = build_behaviour(indexed, n=n, alpha=config.behaviour_alpha)
    test = flat(serving_pools(engine, config, scored, signals, blocked))
    settings = {field: getattr(config, field) for field in (*t._SETTINGS, *t.TUNING_GRID)}
    half = np.array([(pool.customer // 2) % 2 == 0 for pool in validation], dtype=bool)  # as tuning.tune
    default = train.ndcg(settings)
    result: dict[str, Any] = {
        "file": path.stem,
        "validation_cases": train.n,
        "evaluated_cases": len(cases),
        "default_blend": float(test.ndcg(settings).sum()) / len(cases),
        "validation_default": float(default.mean()),
    }
    for name, make in MODELS.items():
        evaluated = _fit_and_score(make(), train, test, config, shuffle_labels=shuffle_labels)
        result[name] = float(evaluated.sum()) / len(cases)  # every evaluated case counts
        crossed = np.zeros(train.n)
        for side in (half, ~half):
            other = np.flatnonzero(~side)
            crossed[other] = _fit_and_score(
                make(),
                flat([p for p, s in zip(validation, side, strict=True) if s]),
                flat([validation[i] for i in other]),
                config,
                shuffle_labels=shuffle_labels,
            )
        result[f"{name}_validation"] = float(crossed.mean())
        result[f"{name}_adopted"] = t.significantly_better(crossed, default)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", type=Path, default=[DATA / f for f in FILES])
    parser.add_argument("--shuffle-labels", action="store_true", help="the leak check: random training labels")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")
    import django

    django.setup()
    np.seterr(all="ignore")
    for path in args.files:
        r = compare(path, shuffle_labels=args.shuffle_labels)
        print(
            f"{r['file']}: {r['validation_cases']} validation / {r['evaluated_cases']} evaluated cases\n"
            f"  evaluated NDCG@10: default blend {r['default_blend']:.4f}, logistic {r['logistic']:.4f}, "
            f"gbdt {r['gbdt']:.4f}\n"
            f"  cross-fitted on the validation cases: default blend {r['validation_default']:.4f}, "
            f"logistic {r['logistic_validation']:.4f} ({'adopted' if r['logistic_adopted'] else 'not adopted'}), "
            f"gbdt {r['gbdt_validation']:.4f} ({'adopted' if r['gbdt_adopted'] else 'not adopted'})",
            flush=True,
        )


if __name__ == "__main__":
    main()
