"""The network path, gateway → validator → miners → gateway, over loopback with offline miners.

    .venv/bin/python -m bench.network_bench [--requests 200] [--concurrency 1 8 32] [--json]

Starts the processes `make run` starts in local mode (web for the gateway's public key, `run_validator
--local-chain`, three `run_miner --provider offline --local-chain`) on a fresh SQLite database under a
temporary BITRECS_LOCAL_DIR with the demo store, then sends signed `/rec` requests with the gateway's
`ValidatorClient` for the demo's products. Reported, for each concurrency level: requests/s and the
p50/p99 latency of `/rec`, beside the validator's bare `/ping` on the same server and the same client
threads (the reference of this run: what HTTP alone costs), and the ratios.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, *, timeout: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _run_level(call: Any, jobs: list[Any], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0

    def one(job: Any) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            call(job)
        except Exception:  # a failed call is counted, the run goes on
            failures += 1
            return
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, jobs))
    elapsed = time.perf_counter() - started
    if not latencies:
        raise RuntimeError("every call failed")
    return {
        "requests": len(jobs),
        "failed": failures,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    local_dir = tempfile.mkdtemp(prefix="bitrecs-network-bench-")
    web_port, validator_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "BITRECS_LOCAL_DIR": local_dir,
        "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings",
        "APP_URL": f"http://127.0.0.1:{web_port}",
        "BITRECS_VALIDATOR_RATE_LIMIT_PER_MINUTE": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    processes: list[subprocess.Popen[bytes]] = []
    logs = Path(local_dir) / "logs"
    logs.mkdir()

    def start(name: str, *command: str) -> None:
        out = (logs / f"{name}.log").open("wb")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))

    try:
        for command in (("migrate", "--noinput", "-v", "0"), ("seed_demo",)):
            subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
        start(
            "web",
            str(ROOT / ".venv/bin/gunicorn"),
            "bitrecs_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            "2",
        )
        for index in (1, 2, 3):
            start(
                f"miner{index}",
                PYTHON,
                "manage.py",
                "run_miner",
                "--provider",
                "offline",
                "--local-chain",
                "--create-wallet",
                "--wallet-name",
                f"miner{index}",
                "--port",
                str(_free_port()),
            )
        _wait(f"http://127.0.0.1:{web_port}/healthz", timeout=60)
        time.sleep(3)  # the miners register on the chain as they start
        start(
            "validator",
            PYTHON,
            "manage.py",
            "run_validator",
            "--local-chain",
            "--create-wallet",
            "--port",
            str(validator_port),
        )
        validator = f"http://127.0.0.1:{validator_port}"
        _wait(f"{validator}/ping", timeout=60, headers={"Authorization": "Bearer local"})

        os.environ.update({k: env[k] for k in ("BITRECS_LOCAL_DIR", "DJANGO_SETTINGS_MODULE", "APP_URL")})
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.utils import timezone

        from catalog_sync.models import Product
        from merchants.models import Store
        from subnet.client import ValidatorClient
        from subnet.selectors import list_candidate_pool, wire_sku
        from subnet.services import build_context
        from subnet.types import format_created_at

        store = Store.objects.get(site_key="demo")
        products = list(Product.objects.filter(store=store, in_stock=True, price__gt=0).order_by("id")[:20])
        contexts = [
            (wire_sku(p), build_context(products=list_candidate_pool(store=store, product=p))) for p in products
        ]

        def pooled_session() -> requests.Session:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
            session.mount("http://", adapter)
            return session

        client = ValidatorClient(
            validator,
            "local",
            network="testnet",
            max_in_flight=64,
            requests_per_minute=10_000_000,
            max_attempts=1,
            session=pooled_session(),
        )
        ping_session = pooled_session()

        def rec(job: tuple[str, str]) -> None:
            client.recommend(
                query=job[0],
                context=job[1],
                site_key="demo",
                num_results=5,
                created_at=format_created_at(when=timezone.now()),
            )

        def ping(_: object) -> None:
            answer = ping_session.get(f"{validator}/ping", headers={"Authorization": "Bearer local"}, timeout=10)
            answer.raise_for_status()

        rec(contexts[0])  # warm-up: the validator fetches the gateway's public key once
        results = []
        for level in args.concurrency:
            jobs = [contexts[i % len(contexts)] for i in range(args.requests)]
            network = _run_level(rec, jobs, level)
            bare = _run_level(ping, list(range(args.requests)), level)
            results.append(
                {
                    "concurrency": level,
                    "rec": network,
                    "ping": bare,
                    "throughput_ratio": round(network["req_per_s"] / bare["req_per_s"], 3),
                    "p99_ratio": round(network["p99_ms"] / bare["p99_ms"], 2),
                }
            )
            print(
                f"concurrency {level:>3}: /rec {network['req_per_s']:>7} req/s p50 {network['p50_ms']:>7} ms "
                f"p99 {network['p99_ms']:>7} ms (failed {network['failed']}) | /ping {bare['req_per_s']:>7} req/s "
                f"p50 {bare['p50_ms']:>6} ms p99 {bare['p99_ms']:>6} ms | ratios: throughput "
                f"{results[-1]['throughput_ratio']}, p99 {results[-1]['p99_ratio']}",
                file=sys.stderr,
            )
        report = {"miners": 3, "requests_per_level": args.requests, "levels": results}
        out_dir = ROOT / "bench" / "results"
        out_dir.mkdir(exist_ok=True)
        (out_dir / f"network-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report, indent=2))
        if args.json:
            print(json.dumps(report))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
