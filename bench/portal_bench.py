"""Portal figures benchmark: what the per-visitor rollup adds to a day's rollup, and what the pages read.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python -m bench.portal_bench \
        [--events 50000] [--visitors 5000] [--rounds 3] [--json]

One store, one UTC day of --events widget events from --visitors sessions in a running experiment (network, local,
holdout, interleave), an order for one visitor in ten. Timed, median of --rounds, each against the reference measured
in the same run: the DailyRollup pass that already existed (`_count_events`, the reference), the new VisitorDay
pass (`_visitor_days`), the whole `rollup_day`, and the reads behind the analytics page (30 days) and the
experiment report. Without DATABASE_URL the bench database is SQLite under BENCH_DIR.
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.widget_bench import BENCH_DIR


def _timed(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--visitors", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.makedirs(BENCH_DIR, exist_ok=True)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{BENCH_DIR}/portal_bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")
    import django

    django.setup()
    from collections import defaultdict

    from django.core.management import call_command
    from django.utils import timezone

    from merchants.models import Store
    from merchants.services.stores import create_store
    from recommendations.experiments import assign_arm
    from recommendations.models import DailyRollup, Experiment, OrderSummary, ShopperEvent, VisitorDay
    from recommendations.selectors.analytics import get_experiment_report, get_store_analytics
    from recommendations.services.rollups import _count_events, _Figures, _visitor_days, day_bounds, rollup_day

    call_command("migrate", verbosity=0)
    Store.objects.filter(domain="portal-bench.example").delete()
    store = create_store(platform=Store.Platform.CUSTOM, domain="portal-bench.example", name="Bench")
    day = timezone.now().date() - timedelta(days=1)
    start, end = day_bounds(day=day)
    weights = {"network": 40, "local": 40, "holdout": 10, "interleave": 10}
    experiment = Experiment.objects.create(
        store=store, name="bench", status="running", weights=weights, started_at=start - timedelta(days=1)
    )
    sessions = [f"bench-visitor-{n:07d}" for n in range(args.visitors)]
    arms = {
        sid: assign_arm(store_id=store.id, experiment_id=experiment.id, session_id=sid, weights=weights)
        for sid in sessions
    }
    kinds = ("impression", "impression", "impression", "view", "click", "add_to_cart")
    rows = []
    for n in range(args.events):
        sid = sessions[n % len(sessions)]
        arm = arms[sid]
        rows.append(
            ShopperEvent(
                store=store,
                event_id=f"b{n}",
                type="view" if arm == "holdout" else kinds[n % len(kinds)],
                occurred_at=start + timedelta(seconds=n % 86_000),
                received_at=start + timedelta(seconds=n % 86_000),
                sku=f"SKU-{n % 700}",
                rec_id="" if arm == "holdout" else "l_bench",
                source="" if arm == "holdout" else ("network", "local")[n % 2],
                placement=("product", "cart", "home")[n % 3],
                arm=arm,
                session_id=sid,
            )
        )
    ShopperEvent.objects.bulk_create(rows, batch_size=5000)
    OrderSummary.objects.bulk_create(
        [
            OrderSummary(
                store=store,
                order_id=f"o{n}",
                ordered_at=start + timedelta(hours=12),
                revenue=Decimal("42.50"),
                session_id=sid,
                arm=arms[sid],
                recommended=n % 2 == 0,
                experiment=experiment,
            )
            for n, sid in enumerate(sessions[::10])
        ],
        batch_size=5000,
    )

    def reference() -> None:
        _count_events(defaultdict(_Figures), start=start, end=end, store_id=store.id)

    results = {
        "events": args.events,
        "visitors": args.visitors,
        "database": "postgresql" if os.environ["DATABASE_URL"].startswith("postgres") else "sqlite",
        "reference_daily_rollup_pass_s": _timed(reference, args.rounds),
        "visitor_day_pass_s": _timed(
            lambda: _visitor_days(day=day, start=start, end=end, store_id=store.id), args.rounds
        ),
        "rollup_day_s": _timed(lambda: rollup_day(day=day, store_id=store.id), args.rounds),
    }
    results["visitor_rows"] = VisitorDay.objects.filter(store=store).count()
    results["rollup_rows"] = DailyRollup.objects.filter(store=store).count()
    results["analytics_page_read_s"] = _timed(
        lambda: get_store_analytics(store=store, start=day - timedelta(days=29), end=day), args.rounds
    )
    results["experiment_report_read_s"] = _timed(
        lambda: get_experiment_report(experiment=experiment, today=day), args.rounds
    )
    ref = results["reference_daily_rollup_pass_s"]
    for key in ("visitor_day_pass_s", "rollup_day_s", "analytics_page_read_s", "experiment_report_read_s"):
        results[key.replace("_s", "_ratio")] = results[key] / ref if ref else None
    Store.objects.filter(pk=store.pk).delete()
    results["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:32} {value:.4f}" if isinstance(value, float) else f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
