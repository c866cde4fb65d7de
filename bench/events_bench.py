"""Event intake benchmark: POST /api/v1/events against a bare Django view taking the same POST, same gunicorn.

    .venv/bin/python -m bench.events_bench [--duration 10] [--connections 16] [--rounds 3] [--events 10]
                                           [--spool journal|redis|both] [--drain after|in-process] [--json]

Reuses bench.widget_bench's harness (gunicorn with 2 sync workers, DEBUG off, WIDGET_RATE_LIMIT=off, the Python
keep-alive load loop) with bench.events_settings, whose URLs add `POST /bench/bare-post` (an empty 204). Each
request posts one sendBeacon-shaped batch of --events events (text/plain), cycling through 2,000 distinct batches.
The spool is the journal files (`--spool journal`, the default) or a Redis list (`--spool redis`, needs REDIS_URL).
`--drain after` (default) turns the web processes' drain thread off, so the rounds measure intake alone, and drains
the spool in this process after the rounds, reporting the drain's speed (events written per second, into the bench
database: SQLite under BENCH_DIR, or DATABASE_URL); `--drain in-process` leaves the drain thread on during the load.
Target: intake throughput >= 0.8x the bare view's.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import Any

from bench import widget_bench
from bench.widget_bench import BENCH_DIR, _free_port, run_python_load, start_server, stop_server, wait_until_up

SITE_KEY = "bench-events"
BATCHES = 2000


def _bodies(*, events: int, salt: str) -> list[bytes]:
    now = int(time.time() * 1000)
    return [
        json.dumps(
            {
                "site_key": SITE_KEY,
                "events": [
                    {
                        "event_id": f"{salt}-{batch}-{n}",
                        "type": ("impression", "click", "view", "add_to_cart")[n % 4],
                        "ts": now,
                        "sku": f"SKU-{(batch * 7 + n) % 500}",
                        "rec_id": "l_0123456789abcdef0123",
                        "placement": "product",
                        "session_id": f"bench-session-{batch % 300:05d}",
                    }
                    for n in range(events)
                ],
            }
        ).encode()
        for batch in range(BATCHES)
    ]


def _seed() -> None:
    from django.core.management import call_command

    from merchants.models import Store
    from merchants.services.stores import create_store

    call_command("migrate", verbosity=0)
    if not Store.objects.filter(site_key=SITE_KEY).exists():
        create_store(platform="custom", domain="events.bench.local", site_key=SITE_KEY, name="Events bench")


def _drain() -> dict[str, float]:
    from django.db import connections

    from recommendations.services.events import drain_event_spool, spooled_batches

    waiting = spooled_batches()
    started = time.perf_counter()
    written = 0
    while spooled_batches():
        written += drain_event_spool()
    seconds = time.perf_counter() - started
    connections.close_all()
    return {
        "batches": waiting,
        "events": written,
        "seconds": round(seconds, 2),
        "events_per_s": round(written / seconds, 1) if seconds else 0.0,
    }


def measure(*, spool: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start gunicorn with this spool, run the bare/events rounds alternating order, stop it, drain the spool."""
    if spool == "redis" and not os.environ.get("REDIS_URL"):
        raise SystemExit("--spool redis needs REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    os.environ["EVENTS_SPOOL_URL"] = os.environ.get("REDIS_URL", "") if spool == "redis" else ""
    os.environ["EVENTS_DRAIN_IN_PROCESS"] = "true" if args.drain == "in-process" else "false"
    os.environ["EVENTS_SPOOL_KEY"] = "bitrecs:bench:events:spool"
    os.environ["EVENTS_SPOOL_DIR"] = str(BENCH_DIR / "event-spool")
    from django.conf import settings

    settings.EVENTS_SPOOL_URL = os.environ["EVENTS_SPOOL_URL"]  # the drain below runs in this process
    settings.EVENTS_SPOOL_KEY = os.environ["EVENTS_SPOOL_KEY"]
    settings.EVENTS_SPOOL_DIR = os.environ["EVENTS_SPOOL_DIR"]
    port = _free_port()
    widget_bench.SETTINGS_MODULE = "bench.events_settings"  # start_server passes it to gunicorn
    server = start_server(port, BENCH_DIR / "gunicorn-events.log", answer_cache_seconds=0)
    rows: list[dict[str, Any]] = []
    try:
        wait_until_up(port, server)
        bodies = _bodies(events=args.events, salt=f"{spool}-{time.time_ns()}")
        for round_number in range(args.rounds):
            order = [("bare", "/bench/bare-post"), ("events", "/api/v1/events")]
            if round_number % 2:
                order.reverse()
            measured = {}
            for name, path in order:
                run_python_load(
                    name,
                    port,
                    [path],
                    duration=widget_bench.WARMUP_SECONDS,
                    connections=args.connections,
                    bodies=bodies,
                )
                measured[name] = run_python_load(
                    name, port, [path], duration=args.duration, connections=args.connections, bodies=bodies
                )
            bare, events = measured["bare"], measured["events"]
            row = {
                "round": round_number + 1,
                "bare": asdict(bare),
                "events": asdict(events),
                "throughput_ratio": round(events.rps / bare.rps, 3),
                "p99_ratio": round(events.p99_ms / bare.p99_ms, 3),
            }
            rows.append(row)
            if not args.json:
                print(
                    f"[spool {spool}] round {row['round']}: bare {bare.rps:6.0f} req/s p99 {bare.p99_ms:6.2f} ms | "
                    f"events {events.rps:6.0f} req/s p99 {events.p99_ms:6.2f} ms | {row['throughput_ratio']:.2f}x "
                    f"throughput, {row['p99_ratio']:.2f}x p99 | errors {bare.errors}/{events.errors}"
                )
    finally:
        stop_server(server)
    ratios = sorted(r["throughput_ratio"] for r in rows)
    p99s = sorted(r["p99_ratio"] for r in rows)
    return {
        "rounds": rows,
        "median_throughput_ratio": ratios[len(ratios) // 2],
        "median_p99_ratio": p99s[len(p99s) // 2],
        "drain": _drain(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="bare/events pairs, alternating order (default 3)")
    parser.add_argument("--events", type=int, default=10, help="events per batch (default 10, at most 50)")
    parser.add_argument("--spool", choices=["journal", "redis", "both"], default="journal")
    parser.add_argument("--drain", choices=["after", "in-process"], default="after")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)

    widget_bench._setup_django()
    _seed()
    spools = ["journal", "redis"] if args.spool == "both" else [args.spool]
    if args.spool == "both" and not os.environ.get("REDIS_URL"):
        spools = ["journal"]
    summary: dict[str, Any] = {
        "events_per_batch": args.events,
        "connections": args.connections,
        "drain": args.drain,
        "modes": {},
    }
    for spool in spools:
        summary["modes"][spool] = measure(spool=spool, args=args)
    results_dir = widget_bench.BASE_DIR / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"events_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary))
        return 0
    for spool, mode in summary["modes"].items():
        drain = mode["drain"]
        print(
            f"median [spool {spool}]: events/bare {mode['median_throughput_ratio']:.2f}x throughput (target >= 0.8), "
            f"{mode['median_p99_ratio']:.2f}x p99; drain wrote {drain['events']} events from {drain['batches']} "
            f"batches in {drain['seconds']} s ({drain['events_per_s']:.0f} events/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
