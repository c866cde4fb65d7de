"""Lighthouse budget: the demo product page with and without the widget, median of N runs each.

    .venv/bin/python -m bench.lighthouse_bench [--runs 5] [--json]

What it does (STOREFRONT.md §1: Shopify's rule is "no more than 10 points lower"; our budget is 2):

1. Migrates a scratch local-mode database (SQLite under BENCH_DIR, default /tmp/bitrecs-lighthouse-bench) and seeds
   the demo store (`seed_demo`), then starts gunicorn (2 sync workers, local mode so `/demo/` is served) on a free
   loopback port.
2. Runs Lighthouse 12.2.3 (node_modules, `npm ci`) with Debian's Chromium, performance category only, mobile
   emulation as Lighthouse's default, alternating the two pages per run: the demo product page as a shopper sees it,
   and the same page with `?bitrecs=off` (the demo renders no container and no script tag: the store without us).
3. Prints the median performance score, CLS, TBT, LCP and FCP of both and the deltas (widget minus none).
   Budget: score delta >= -2 points, CLS 0.

Lighthouse's own throttling is simulated (no sleeps); every run is bounded by a timeout.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.widget_bench import _free_port, stop_server, wait_until_up

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("BENCH_DIR", "/tmp/bitrecs-lighthouse-bench"))  # noqa: S108 (a scratch folder)
LIGHTHOUSE = BASE_DIR / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --disable-dev-shm-usage"
)
RUN_TIMEOUT = 180
AUDITS = {
    "cls": "cumulative-layout-shift",
    "tbt_ms": "total-blocking-time",
    "lcp_ms": "largest-contentful-paint",
    "fcp_ms": "first-contentful-paint",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}}
    env.update({"BITRECS_LOCAL_DIR": str(BENCH_DIR), "DJANGO_DEBUG": "true", "WIDGET_RATE_LIMIT": "off"})
    return env


def seed(port: int) -> str:
    """A fresh local database with the demo store; returns the path of one demo product page."""
    shutil.rmtree(BENCH_DIR, ignore_errors=True)
    BENCH_DIR.mkdir(parents=True)
    env = {**_env(), "APP_URL": f"http://127.0.0.1:{port}"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=BASE_DIR, env=env, check=True, capture_output=True)
    code = (
        "import django; django.setup(); "
        "from catalog_sync.models import Product; "
        "p = Product.objects.filter(store__site_key='demo').order_by('id').first(); "
        "print(p.handle or p.external_id)"
    )
    handle = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"/demo/products/{handle}"


def start_server(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**_env(), "APP_URL": f"http://127.0.0.1:{port}", "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings"}
    command = [str(gunicorn), "bitrecs_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    log = log_path.open("wb")
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log, start_new_session=True)


def lighthouse(url: str, out_dir: Path) -> dict[str, float]:
    """One Lighthouse run of the performance category; the figures this bench reports."""
    report = out_dir / "report.json"
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    command = [
        str(LIGHTHOUSE),
        url,
        "--only-categories=performance",
        "--output=json",
        f"--output-path={report}",
        f"--chrome-flags={CHROME_FLAGS}",
        "--quiet",
    ]
    subprocess.run(command, env=env, check=True, timeout=RUN_TIMEOUT, capture_output=True)
    data = json.loads(report.read_text())
    figures = {"score": round(100 * float(data["categories"]["performance"]["score"] or 0), 1)}
    for name, audit in AUDITS.items():
        figures[name] = float(data["audits"][audit]["numericValue"])
    return figures


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 4) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        print("Lighthouse is not installed: run `npm ci` (make setup-dev does).", file=sys.stderr)
        return 2
    port = _free_port()
    page = seed(port)
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "gunicorn.log")
        try:
            wait_until_up(port, server)
            pages = {"widget": f"{base}{page}", "none": f"{base}{page}?bitrecs=off"}
            runs: dict[str, list[dict[str, float]]] = {"widget": [], "none": []}
            for index in range(args.runs):
                order = ["widget", "none"] if index % 2 == 0 else ["none", "widget"]
                for name in order:
                    runs[name].append(lighthouse(pages[name], Path(tmp)))
        finally:
            stop_server(server)
    result: dict[str, Any] = {"page": page, "runs": args.runs, "widget": medians(runs["widget"])}
    result["none"] = medians(runs["none"])
    result["delta"] = {k: round(result["widget"][k] - result["none"][k], 4) for k in result["widget"]}
    result["within_budget"] = result["delta"]["score"] >= -2 and result["widget"]["cls"] == 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"Lighthouse 12.2.3, {args.runs} runs each, medians, page {page}")
        print(f"{'':8}{'score':>8}{'CLS':>8}{'TBT ms':>9}{'LCP ms':>9}{'FCP ms':>9}")
        for name in ("none", "widget", "delta"):
            r = result[name]
            print(f"{name:8}{r['score']:8.1f}{r['cls']:8.3f}{r['tbt_ms']:9.0f}{r['lcp_ms']:9.0f}{r['fcp_ms']:9.0f}")
        print("within budget (score delta >= -2, CLS 0):", result["within_budget"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
