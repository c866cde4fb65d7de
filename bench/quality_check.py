"""Offline quality on the shared files, tuned and --no-tune, with the robustness figures an engine change must show.

    .venv/bin/python -m bench.quality_check [--set FIELD=VALUE ...] [--files PATH ...] [--json]

For each file and tuning mode: NDCG@10, HR@10, coverage@10 of the production path (evaluation.run_evaluation, the
code behind `manage.py evaluate_recs`), NDCG on two bootstrap resamples of the users and on a time split (the first
70 % of the users by first interaction, and the rest; evaluation.robustness_check). With --set, the same figures
for EngineConfig(**overrides) beside the defaults, and each figure's difference: the resamples are drawn from one
seed, so the differences are paired (the same users on both sides). Needs `manage.py migrate` once (SQLite).
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "interactions"
FILES = (
    "amazon_office/amazon_office_sample_1000.json",
    "amazon_office/amazon_office_sample_5000.json",
    "online_retail/online_retail_5000.json",
)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _figures(path: Path, overrides: dict[str, Any], tune: bool) -> dict[str, Any]:
    from recommendations.engine import EngineConfig
    from recommendations.evaluation import run_evaluation

    config = dataclasses.replace(EngineConfig(self_tune=tune), **overrides)
    result = run_evaluation(path=path, config=config, robustness=True)
    assert result.robustness is not None
    r = result.robustness
    return {
        "ndcg": result.ndcg,
        "hr": result.hit_rate,
        "coverage": result.coverage,
        "boot": list(r.bootstrap),
        "early": r.early,
        "late": r.late,
        "chosen": (result.tuning or {}).get("chosen"),
    }


def _line(label: str, f: dict[str, Any], spec: str = ".4f") -> str:
    boot = "/".join(f"{x:{spec}}" for x in f["boot"])
    return (
        f"  {label:8s} ndcg {f['ndcg']:{spec}} hr {f['hr']:{spec}} cov {f['coverage']:{spec}}"
        f"  boot {boot}  early {f['early']:{spec}} late {f['late']:{spec}}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="EngineConfig override.")
    parser.add_argument("--files", nargs="*", type=Path, default=[DATA / f for f in FILES])
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the table.")
    args = parser.parse_args()
    overrides = {k: _value(v) for k, _, v in (item.partition("=") for item in args.set)}

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)

    out: dict[str, Any] = {}
    for path in args.files:
        for tune in (True, False):
            key = f"{path.stem}{'' if tune else ' --no-tune'}"
            entry = {"default": _figures(path, {}, tune)}
            if overrides:
                entry["changed"] = _figures(path, overrides, tune)
            out[key] = entry
            if args.json:
                continue
            print(key)
            print(_line("default", entry["default"]))
            if overrides:
                a, b = entry["default"], entry["changed"]
                print(_line("changed", b))
                delta = {
                    "ndcg": b["ndcg"] - a["ndcg"],
                    "hr": b["hr"] - a["hr"],
                    "coverage": b["coverage"] - a["coverage"],
                    "boot": [y - x for x, y in zip(a["boot"], b["boot"], strict=True)],
                    "early": b["early"] - a["early"],
                    "late": b["late"] - a["late"],
                }
                print(_line("delta", delta, "+.4f"))
                if tune:
                    print(f"  chosen   {json.dumps(b['chosen'])}")
    if args.json:
        print(json.dumps({"overrides": overrides, "results": out}))


if __name__ == "__main__":
    main()
