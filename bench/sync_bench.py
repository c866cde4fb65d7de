"""Catalog sync benchmark: products per second and worker memory at 20k and 100k products.

    .venv/bin/python -m bench.sync_bench [--sizes 20000 100000]
        [--platforms shopify-paged shopify-bulk woocommerce] [--json]

For each platform/mode and size:

1. A local fake store serves a generated catalog: Shopify's GraphQL Admin API (paged, or a bulk operation and its
   JSONL file) built from the shared Shopify, Walmart and ASOS exports in ../shared/data/catalogs, with several
   variants per product; or WooCommerce's REST API (`FakeWooCommerce.load_catalog_csv`). The fakes run in this
   process (threads); the CPU they use is reported, so a fake that became the bottleneck would show.
2. The reference, measured in the same run: `catalog_sync.services.upsert_products` on the same payloads (mapped
   by the client's own mapping functions, no HTTP, no Celery), in-process, into the same PostgreSQL, in batches of
   1,000 (the upsert's own batch size) and, for paged syncs, also in the sync's page size.
3. The sync: one real Celery worker subprocess (prefork, concurrency 2) on Redis and PostgreSQL runs
   `catalog_sync.sync_store` through the real client; the bench polls the SyncRun until it ends and samples the
   worker's memory (VmRSS/VmHWM of the main and pool processes, PSS from smaps_rollup).

Speed is reported as a ratio (sync products/s / raw upsert products/s), because this machine is shared and noisy;
memory as peak MB and as the ratio between the largest and smallest size (flat = near 1).

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379. The database
`bitrecs_bench` is dropped and re-created, and dropped again at the end. The worker runs with DJANGO_DEBUG=false
(production settings) and generated secrets, and a throwaway BITRECS_LOCAL_DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
DATA_DIR = (BASE_DIR / ".." / "shared" / "data" / "catalogs").resolve()

PLATFORMS = ("shopify-paged", "shopify-bulk", "woocommerce")
DEFAULT_SIZES = (20_000, 100_000)
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
DB_NAME = "bitrecs_bench"
# Shopify Plus: a 10,000-point bucket restored at 1,000 points a second.
SHOPIFY_BUCKET_MAX, SHOPIFY_RESTORE_RATE = 10_000.0, 1_000.0
REFERENCE_BATCH = 1000
TEMPLATES_PER_SOURCE = 2000
SAMPLE_INTERVAL_SECONDS = 0.2
POLL_INTERVAL_SECONDS = 0.5
WORKER_READY_TIMEOUT_SECONDS = 90.0
WORKER_STOP_TIMEOUT_SECONDS = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """A precondition or a run failed; the message says what to do."""


# --- Environment ---------------------------------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=3):
        return True
    return False


def check_services(redis_db: int) -> None:
    """Fail with a clear message when PostgreSQL or Redis is not reachable."""
    if not _port_open(PG_HOST, PG_PORT):
        raise BenchError(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}; start it (user {PG_USER}, trust auth).")
    if not _port_open(REDIS_HOST, REDIS_PORT):
        raise BenchError(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}; start it (it is the Celery broker).")
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis on {REDIS_HOST}:{REDIS_PORT} does not answer PING on db {redis_db}: {exc}") from exc


def _admin_connection() -> Any:
    import psycopg

    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.Error as exc:
        raise BenchError(f"Cannot connect to PostgreSQL as {PG_USER} on {PG_HOST}:{PG_PORT}: {exc}") from exc


def recreate_database() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    with contextlib.suppress(Exception), _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def use_database(name: str) -> None:
    """Point the bench at another database name (several people benchmarking on one PostgreSQL)."""
    global DB_NAME
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise BenchError(f"--database {name!r}: use lowercase letters, digits and underscores.")
    DB_NAME = name


def bench_environment(*, local_dir: str, queue: str, redis_db: int) -> dict[str, str]:
    """Production settings (DJANGO_DEBUG off) on the bench database, broker and queue, with throwaway secrets."""
    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings",
        "DJANGO_DEBUG": "false",
        "BITRECS_LOCAL_DIR": local_dir,
        "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}",
        "CELERY_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PLATFORM_ALLOW_PRIVATE_HOSTS": "true",  # the fake stores listen on loopback
        "SHOPIFY_API_KEY": "bench-client-id",
        "LOG_LEVEL": "WARNING",
    }
    # Every secret settings.py asks for (secret("NAME", ...)) gets a random value; encryption keys are Fernet keys.
    names = re.findall(r'secret\(\s*"([A-Z0-9_]+)"', (BASE_DIR / "bitrecs_site" / "settings.py").read_text())
    for name in names:
        env[name] = Fernet.generate_key().decode() if "ENCRYPTION" in name else secrets.token_hex(32)
    return env


def _flush_bench_keys(redis_db: int, queue: str) -> None:
    """Remove this run's queue and cached sync context from Redis (other keys of the db are left alone)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db, socket_timeout=3)
        keys = [queue, *client.scan_iter(match=f"*{queue}*", count=1000)]
        keys += list(client.scan_iter(match="*catalog_sync:woocommerce:context:*", count=1000))
        if keys:
            client.delete(*keys)


def _truncate_catalog() -> None:
    """Empty the stores and everything hanging off them, so each measurement starts from an empty catalog."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE merchants_store CASCADE")


# --- The generated Shopify catalog ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    title: str
    vendor: str
    product_type: str
    category: str
    tags: tuple[str, ...]
    description_html: str
    price: Decimal
    compare_at_price: Decimal | None
    variant_options: tuple[tuple[tuple[str, str], ...], ...]


def _catalog_payloads(path: Path, limit: int) -> list[Any]:
    from catalog_sync.importers import ParseContext, open_catalog
    from catalog_sync.types import ProductPayload

    found = []
    with open_catalog(path, context=ParseContext(currency="USD")) as reader:
        for item in reader:
            if isinstance(item, ProductPayload) and item.title:
                found.append(item)
                if len(found) >= limit:
                    break
    return found


def load_shopify_templates() -> list[Template]:
    """Product templates from the shared Shopify, Walmart and ASOS exports, interleaved; several variants each.

    Shopify rows keep their own variants; the others get 1-5 variants (sizes, with the ASOS colour), 3 on average.
    """
    sizes = ("S", "M", "L", "XL", "XXL")
    sources = [
        _catalog_payloads(DATA_DIR / "shopify" / "electronics_products.csv", TEMPLATES_PER_SOURCE),
        _catalog_payloads(DATA_DIR / "walmart" / "wallmart_5k_kaggle_trimmed.csv", TEMPLATES_PER_SOURCE),
        _catalog_payloads(DATA_DIR / "asos" / "asos_30k_trimmed.csv", TEMPLATES_PER_SOURCE),
    ]
    if not all(sources):
        raise BenchError(f"No products read from the catalogs under {DATA_DIR}.")
    templates: list[Template] = []
    for position in range(max(len(source) for source in sources)):
        for source in sources:
            payload = source[position % len(source)]
            slot = len(templates)
            options = [dict(variant.options) for variant in payload.variants or ()][:10]
            if not options:
                count = 1 + slot % 5
                colour = next((str(o["values"][0]) for o in payload.options if o.get("name") == "Color"), "")
                options = [{"Size": size, **({"Color": colour} if colour else {})} for size in sizes[:count]]
                if count == 1:
                    options = []  # Shopify's single "Default Title" variant
            description = payload.description
            templates.append(
                Template(
                    title=payload.title,
                    vendor=payload.vendor,
                    product_type=payload.product_type,
                    category=payload.category_path,
                    tags=tuple(payload.tags),
                    description_html=f"<p>{html.escape(description)}</p>" if description else "",
                    price=payload.price or Decimal("9.99"),
                    compare_at_price=payload.compare_at_price,
                    variant_options=tuple(tuple(option.items()) for option in options),
                )
            )
    return templates


class ShopifyCatalog(Sequence[dict[str, Any]]):
    """`count` Admin API product nodes made on demand (FakeShopifyAdmin.products), product i from template i % T.

    Nothing is held per product, so 100k products cost no memory in the fake; a page builds only its nodes.
    """

    def __init__(self, templates: Sequence[Template], count: int) -> None:
        self.templates = templates
        self.size = count

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            return [self._node(index) for index in range(*item.indices(self.size))]
        index = item + self.size if item < 0 else item
        if not 0 <= index < self.size:
            raise IndexError(item)
        return self._node(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._node(index) for index in range(self.size))

    def variant_count(self) -> int:
        per_template = [max(1, len(template.variant_options)) for template in self.templates]
        cycles, rest = divmod(self.size, len(self.templates))
        return cycles * sum(per_template) + sum(per_template[:rest])

    def _node(self, index: int) -> dict[str, Any]:
        from bitrecs_site.testing.fake_shopify_admin import make_product

        copy, slot = divmod(index, len(self.templates))
        template = self.templates[slot]
        options = [dict(option) for option in template.variant_options]
        return make_product(
            index + 1,
            title=f"{template.title} #{copy + 1}" if copy else template.title,
            vendor=template.vendor,
            product_type=template.product_type,
            category=template.category,
            tags=template.tags,
            description_html=template.description_html,
            price=template.price,
            compare_at_price=str(template.compare_at_price) if template.compare_at_price is not None else None,
            inventory=index % 17,
            sku_prefix=f"B{slot}",
            variant_options=options or None,
        )


# --- Worker process and memory sampling ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.update(int(child) for child in path.read_text().split())
    return sorted(found)


def _status_kb(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount = line.split(":", 1)
                values[name] = int(amount.split()[0])
    return values


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """utime + stime of a process (plus the CPU of its exited, reaped children when asked)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _database_sessions() -> int | None:
    """Sessions ever opened on the bench database (pg_stat_database.sessions): one per reconnect."""
    with contextlib.suppress(Exception), _admin_connection() as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (DB_NAME,)).fetchone()
        return int(row[0]) if row else None
    return None


def _system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _postgres_cpu() -> float:
    """CPU seconds of every postgres process, counting exited backends through the postmaster's child time."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name not in ("postgres", "postmaster"):
            continue
        pid = int(stat.parent.name)
        parent = int(text.rsplit(")", 1)[1].split()[1])
        is_postmaster = not Path(f"/proc/{parent}/comm").exists() or Path(
            f"/proc/{parent}/comm"
        ).read_text().strip() not in ("postgres", "postmaster")
        total += _cpu_seconds(pid, with_children=is_postmaster)
    return total


@dataclass
class MemoryReport:
    baseline_rss_mb: float = 0.0
    baseline_pss_mb: float = 0.0
    peak_rss_sum_mb: float = 0.0
    peak_pss_sum_mb: float = 0.0
    rss_growth_mb: float = 0.0
    pss_growth_mb: float = 0.0
    peak_rss_per_process_mb: dict[str, float] = field(default_factory=dict)
    # VmHWM covers each process's whole life: it can include a task the worker ran after the sync ended.
    hwm_per_process_mb: dict[str, float] = field(default_factory=dict)
    worker_cpu_s: float = 0.0
    samples: int = 0


@dataclass(frozen=True)
class _Sample:
    at: float
    rss_sum: float
    pss_sum: float | None
    rss: dict[str, float]


class WorkerSampler:
    """Samples the worker's processes (main + pool children) in a thread: RSS sums, PSS sums, per-process RSS.

    Peaks are taken over the samples up to the end of the sync only (the worker may start other tasks after it,
    e.g. a recommendations rebuild enqueued by the finished sync).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[_Sample] = []
        self.hwm: dict[str, float] = {}
        self._cpu: dict[int, float] = {}
        self._roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-sampler", daemon=True)

    def start(self) -> WorkerSampler:
        self.sample(pss=True)
        self._thread.start()
        return self

    def stop(self, *, until: float) -> MemoryReport:
        """Stop sampling; peaks over the samples taken up to `until` (time.monotonic())."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample(pss=False)
        kept = [sample for sample in self.samples if sample.at <= until] or self.samples[:1]
        first = self.samples[0]
        report = MemoryReport(
            baseline_rss_mb=round(first.rss_sum, 1),
            baseline_pss_mb=round(first.pss_sum or 0.0, 1),
            peak_rss_sum_mb=round(max(sample.rss_sum for sample in kept), 1),
            peak_pss_sum_mb=round(max(sample.pss_sum or 0.0 for sample in kept), 1),
            hwm_per_process_mb=dict(self.hwm),
            worker_cpu_s=round(sum(self._cpu.values()), 2),
            samples=len(kept),
        )
        report.rss_growth_mb = round(report.peak_rss_sum_mb - report.baseline_rss_mb, 1)
        report.pss_growth_mb = round(report.peak_pss_sum_mb - report.baseline_pss_mb, 1)
        for sample in kept:
            for role, rss in sample.rss.items():
                report.peak_rss_per_process_mb[role] = round(max(report.peak_rss_per_process_mb.get(role, 0.0), rss), 1)
        return report

    def current_rss_mb(self) -> float:
        return sum(_status_kb(pid).get("VmRSS", 0) for pid in [self.pid, *_children(self.pid)]) / 1024

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(SAMPLE_INTERVAL_SECONDS):
            ticks += 1
            self.sample(pss=ticks % 5 == 0)

    def sample(self, *, pss: bool) -> None:
        pids = [self.pid, *_children(self.pid)]
        at = time.monotonic()
        rss: dict[str, float] = {}
        pss_sum = 0.0
        for pid in pids:
            role = self._roles.setdefault(pid, "main" if pid == self.pid else f"child-{len(self._roles)}")
            status = _status_kb(pid)
            rss[role] = status.get("VmRSS", 0) / 1024
            if "VmHWM" in status:
                self.hwm[role] = round(status["VmHWM"] / 1024, 1)
            if pss:
                pss_sum += _pss_kb(pid) / 1024
            cpu = _cpu_seconds(pid)
            if cpu:
                self._cpu[pid] = cpu
        self.samples.append(_Sample(at=at, rss_sum=sum(rss.values()), pss_sum=pss_sum if pss else None, rss=rss))


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""


def start_worker(*, env: dict[str, str], queue: str, log_path: Path) -> Worker:
    """One real worker: prefork pool, concurrency 2 (the default pool settings), consuming the bench queue."""
    command = [sys.executable, "-m", "celery", "-A", "bitrecs_site", "worker", "-Q", queue]
    command += ["--pool", "prefork", "--concurrency", "2", "--hostname", f"bench-{queue}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, cwd=BASE_DIR, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    worker = Worker(process=process, log_path=log_path)
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"The Celery worker exited with {process.returncode}:\n{worker.log()[-4000:]}")
        if " ready." in worker.log() and len(_children(process.pid)) >= 2:
            return worker
        time.sleep(0.2)
    stop_worker(worker)
    raise BenchError(f"The worker was not ready after {WORKER_READY_TIMEOUT_SECONDS:g} s:\n{worker.log()[-4000:]}")


def stop_worker(worker: Worker) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL of the worker's process group after a timeout."""
    process = worker.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # pool children left behind, if any


_TASK_DONE = re.compile(r"Task (catalog_sync\.[a-z_]+)\[[^\]]+\] succeeded in ([0-9.]+)s")


def step_stats(log: str) -> dict[str, Any]:
    """Task counts and durations from the worker's INFO log ("Task … succeeded in 0.12s")."""
    durations: dict[str, list[float]] = {}
    for name, seconds in _TASK_DONE.findall(log):
        durations.setdefault(name, []).append(float(seconds))
    steps = durations.get("catalog_sync.sync_step", [])
    stats: dict[str, Any] = {"tasks": {name: len(values) for name, values in durations.items()}}
    if steps:
        ordered = sorted(steps)
        stats.update(
            steps=len(steps),
            step_seconds_total=round(sum(steps), 2),
            step_p50_ms=round(statistics.median(steps) * 1000, 1),
            step_p95_ms=round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            step_max_s=round(ordered[-1], 2),
            steps_over_900ms=sum(1 for seconds in steps if seconds > 0.9),
        )
    stats["retries"] = log.count("Retry in")
    return stats


# --- Fakes and stores ----------------------------------------------------------------------------------------


class ConnectionCounter:
    """Counts the TCP connections a fake's ThreadingHTTPServer accepts (connection reuse shows as few)."""

    def __init__(self, server: Any) -> None:
        self.count = 0
        original = server.process_request

        def counted(request: Any, client_address: Any) -> None:
            self.count += 1
            original(request, client_address)

        server.process_request = counted


@dataclass
class Case:
    platform: str
    size: int
    store_id: int = 0
    batch_size: int = 0
    expected_variants: int = 0
    fake: Any = None
    counter: ConnectionCounter | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    close: list[Any] = field(default_factory=list)

    def requests_served(self) -> int:
        if self.platform == "woocommerce":
            return sum(self.fake.route_counts.values())
        return -1


def _shopify_store(domain: str, token: str) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from merchants.models import PlatformCredential, Store

    store = Store.objects.create(
        platform=Store.Platform.SHOPIFY, domain=domain, name=domain, status=Store.Status.ACTIVE
    )
    PlatformCredential.objects.create(
        store=store, access_token=token, access_token_expires_at=timezone.now() + timedelta(days=1)
    )
    return store.id


def _woocommerce_store(fake: Any, suffix: str) -> int:
    from django.utils import timezone

    from merchants.models import PlatformCredential, Store, WooCommerceInstall

    key = fake.issue_key()
    store = Store.objects.create(
        platform=Store.Platform.WOOCOMMERCE,
        domain=fake.base_url.removeprefix("http://") + f"/{suffix}",
        name=f"woo-{suffix}",
        status=Store.Status.ACTIVE,
    )
    PlatformCredential.objects.create(
        store=store, access_token="", consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )
    WooCommerceInstall.objects.create(
        user_id=f"bench-{uuid.uuid4().hex}", store_url=fake.base_url, completed_at=timezone.now(), store=store
    )
    return store.id


def open_case(platform: str, size: int, templates: list[Template] | None, restore_rate: float) -> Case:
    """Start the fake store with a generated catalog of `size` products."""
    case = Case(platform=platform, size=size)
    if platform.startswith("shopify"):
        from bitrecs_site.testing.fake_shopify_admin import FakeShopifyAdmin, FakeShopifyAdminServer
        from catalog_sync.clients.shopify import products_page_size
        from catalog_sync.services.sync import BULK_BATCH_SIZE, SHOPIFY_PAGE_SIZE

        assert templates is not None
        catalog = ShopifyCatalog(templates, size)
        state = FakeShopifyAdmin(products=catalog, record_requests=False)  # type: ignore[arg-type]
        state.set_bucket(SHOPIFY_BUCKET_MAX, restore_rate)
        server = FakeShopifyAdminServer(state)
        case.counter = ConnectionCounter(server._server)
        server.__enter__()
        case.close.append(lambda: server.__exit__(None, None, None))
        case.fake = state
        case.expected_variants = catalog.variant_count()
        bulk = platform == "shopify-bulk"
        case.batch_size = BULK_BATCH_SIZE if bulk else products_page_size(SHOPIFY_PAGE_SIZE)
        case.worker_env = {
            "SHOPIFY_ADMIN_URL_TEMPLATE": state.base_url_template,
            "SHOPIFY_BULK_THRESHOLD": "1" if bulk else str(10**9),
        }
    else:
        from bitrecs_site.testing.fake_woocommerce import FakeWooCommerce
        from catalog_sync.services.sync import WOOCOMMERCE_PAGE_SIZE

        fake = FakeWooCommerce(require_https_callback=False).start()
        case.close.append(fake.stop)
        fake.record_requests = False
        assert fake._server is not None
        case.counter = ConnectionCounter(fake._server)
        bulk_catalog = fake.load_catalog_csv(products=size)
        case.fake = fake
        case.expected_variants = bulk_catalog.variation_count
        case.batch_size = WOOCOMMERCE_PAGE_SIZE
    return case


def close_case(case: Case) -> None:
    for close in reversed(case.close):
        with contextlib.suppress(Exception):
            close()
    case.close.clear()


# --- Reference: the raw upsert --------------------------------------------------------------------------------


def _payload_batches(case: Case, batch: int, store_id: int) -> Iterator[list[Any]]:
    """The catalog's payloads, mapped by the platform client's own mapping functions (no HTTP), in batches."""
    if case.platform.startswith("shopify"):
        from catalog_sync.clients.shopify.mapping import product_payload as _product_payload

        catalog: ShopifyCatalog = case.fake.products
        for start in range(0, case.size, batch):
            nodes = catalog[start : start + batch]
            yield [_product_payload(node, node["variants"]["nodes"], "USD") for node in nodes]
        return
    from catalog_sync.clients.woocommerce import WooCommerceCatalog
    from catalog_sync.clients.woocommerce.mapping import is_variable as _is_variable
    from catalog_sync.clients.woocommerce.mapping import product_or_skips as _product_or_skips
    from merchants.models import Store
    from merchants.services.woocommerce import build_woocommerce_client

    client = WooCommerceCatalog(build_woocommerce_client(store=Store.objects.get(id=store_id)))
    currency, paths = client.currency(), client.category_paths()
    bulk = case.fake.bulk
    for start in range(0, case.size, batch):
        payloads = []
        for index in range(start, min(start + batch, case.size)):
            node = json.loads(json.dumps(bulk.product(index)))
            rows = json.loads(json.dumps(bulk.variations(index))) if _is_variable(node) else ()
            payload, _ = _product_or_skips(node, rows, currency=currency, category_paths=paths)
            if payload is not None:
                payloads.append(payload)
        yield payloads


def run_reference(case: Case, batch: int, progress: Progress) -> dict[str, Any]:
    """upsert_products on the catalog's payloads, in-process, timed around the upsert calls only."""
    from catalog_sync.models import Product, Variant
    from catalog_sync.services import upsert_products
    from merchants.models import Store

    _truncate_catalog()
    if case.platform.startswith("shopify"):
        store_id = _shopify_store("bench-reference.myshopify.com", case.fake.access_token)
    else:
        store_id = _woocommerce_store(case.fake, "reference")
    store = Store.objects.get(id=store_id)
    upsert_seconds = 0.0
    started = time.monotonic()
    done = 0
    deadline = started + progress.timeout
    batches = _payload_batches(case, batch, store_id)
    map_seconds = 0.0
    while True:
        began = time.perf_counter()
        payloads = next(batches, None)
        map_seconds += time.perf_counter() - began
        if payloads is None:
            break
        began = time.perf_counter()
        upsert_products(store=store, payloads=payloads)
        upsert_seconds += time.perf_counter() - began
        done += len(payloads)
        progress.line(f"reference batch {batch}: {done}/{case.size} upserted, {done / upsert_seconds:,.0f}/s")
        if time.monotonic() > deadline:
            raise BenchError(f"The reference upsert did not finish within {progress.timeout:g} s.")
    progress.done()
    products = Product.objects.filter(store=store).count()
    variants = Variant.objects.filter(product__store=store).count()
    return {
        "batch": batch,
        "products": products,
        "variants": variants,
        "upsert_seconds": round(upsert_seconds, 2),
        "map_seconds (client mapping, not in products_per_s)": round(map_seconds, 2),
        "elapsed_seconds": round(time.monotonic() - started, 2),
        "products_per_s": round(products / upsert_seconds, 1) if upsert_seconds else None,
    }


# --- The sync ------------------------------------------------------------------------------------------------


class Progress:
    """One progress line on stderr (rewritten in place on a terminal, every 10 s otherwise)."""

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.timeout = timeout
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def line(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            sys.stderr.write(f"\r\033[K[{self.label}] {text}")
            sys.stderr.flush()
        elif now - self._last >= 10:
            sys.stderr.write(f"[{self.label}] {text}\n")
            self._last = now

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        self._last = 0.0


def run_sync(case: Case, *, env: dict[str, str], queue: str, work_dir: Path, progress: Progress) -> dict[str, Any]:
    """Sync the fake store through a real worker; wall time from enqueue to the SyncRun's finished_at."""
    from catalog_sync.models import Product, SyncRun, Variant
    from catalog_sync.tasks import sync_store_task

    _truncate_catalog()
    if case.platform.startswith("shopify"):
        store_id = _shopify_store(f"bench-{case.platform}-{case.size}.myshopify.com", case.fake.access_token)
    else:
        store_id = _woocommerce_store(case.fake, "sync")
    log_path = work_dir / f"worker-{case.platform}-{case.size}.log"
    worker = start_worker(env={**env, **case.worker_env}, queue=queue, log_path=log_path)
    result: dict[str, Any] = {"log": str(log_path)}
    try:
        sampler = WorkerSampler(worker.process.pid).start()
        connections_before = case.counter.count if case.counter else 0
        served_before = case.requests_served()
        bench_cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        system_before = _system_busy()
        postgres_before = _postgres_cpu()
        sessions_before = _database_sessions()
        enqueued_at = time.time()
        sync_store_task.delay(store_id)
        deadline = time.monotonic() + progress.timeout
        run = None
        while time.monotonic() < deadline:
            run = SyncRun.objects.filter(store_id=store_id).order_by("-id").first()
            if worker.process.poll() is not None:
                raise BenchError(f"The worker died (exit {worker.process.returncode}):\n{worker.log()[-4000:]}")
            if run is not None and run.status != SyncRun.Status.RUNNING:
                break
            elapsed = time.time() - enqueued_at
            if run is not None:
                phase = run.detail.get("phase", "?")
                progress.line(
                    f"{phase:<11} {run.done:>7}/{run.total or case.size} products  "
                    f"{run.done / elapsed:8,.0f}/s  {elapsed:6.1f}s  worker RSS {sampler.current_rss_mb():6.0f} MB"
                )
            time.sleep(POLL_INTERVAL_SECONDS)
        else:
            raise BenchError(f"The sync did not finish within {progress.timeout:g} s (last state: {run!r}).")
        progress.done()
        finished = time.time()
        assert run is not None and run.finished_at is not None
        wall = run.finished_at.timestamp() - enqueued_at
        bench_cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        system_after = _system_busy()
        postgres_cpu = _postgres_cpu() - postgres_before
        time.sleep(0.5)  # backends report their session to the statistics when they exit
        sessions_after = _database_sessions()
        memory = sampler.stop(until=time.monotonic() - (time.time() - run.finished_at.timestamp()))
        products = Product.objects.filter(store_id=store_id).count()
        variants = Variant.objects.filter(product__store_id=store_id).count()
        bench_cpu = (bench_cpu_after.ru_utime + bench_cpu_after.ru_stime) - (
            bench_cpu_before.ru_utime + bench_cpu_before.ru_stime
        )
        busy = system_after[0] - system_before[0]
        total = system_after[1] - system_before[1]
        observed = finished - enqueued_at
        result.update(
            status=run.status,
            error=run.error,
            mode=run.detail.get("mode", "rest"),
            seen=run.seen,
            failed=run.failed,
            products=products,
            variants=variants,
            expected_variants=case.expected_variants,
            wall_seconds=round(wall, 2),
            products_per_s=round(run.seen / wall, 1) if wall > 0 else None,
            memory=asdict(memory),
            cpu={
                "worker_s": memory.worker_cpu_s,
                "bench_process_s (fake stores)": round(bench_cpu, 2),
                "postgres_s (approx., all backends)": round(postgres_cpu, 2),
                "machine_busy_pct": round(100 * busy / total, 1) if total else None,
                "machine_busy_cores": round(busy / observed, 2) if observed else None,
            },
            database_sessions_opened=(
                sessions_after - sessions_before if sessions_after is not None and sessions_before is not None else None
            ),
            http={
                "connections": (case.counter.count - connections_before) if case.counter else None,
                "requests": (case.requests_served() - served_before) if served_before >= 0 else None,
            },
        )
        if products != case.size or run.status != SyncRun.Status.SUCCEEDED:
            result["warning"] = f"expected {case.size} products and a succeeded run"
        return result
    finally:
        stop_worker(worker)
        result["steps"] = step_stats(worker.log())


# --- Report --------------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(cases: list[dict[str, Any]], memory_flatness: dict[str, Any], out: Any) -> None:
    header = (
        f"{'platform':<14} {'products':>8} {'variants':>8} {'wall s':>7} {'prod/s':>7} {'ref/s':>7} {'ratio':>6} "
        f"{'ref(pg)/s':>9} {'ratio(pg)':>9} {'peak RSS MB':>11} {'peak PSS MB':>11} {'PSS +MB':>7} {'max proc MB':>11} "
        f"{'steps':>6} {'step p50 ms':>11}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for case in cases:
        sync = case.get("sync", {})
        memory = sync.get("memory", {})
        steps = sync.get("steps", {})
        page_ref = case.get("reference_page") or {}
        per_process = memory.get("peak_rss_per_process_mb") or {}
        print(
            f"{case['platform']:<14} {case['size']:>8} {_fmt(sync.get('variants'), 'd'):>8} "
            f"{_fmt(sync.get('wall_seconds'), '.1f'):>7} {_fmt(sync.get('products_per_s')):>7} "
            f"{_fmt(case.get('reference', {}).get('products_per_s')):>7} {_fmt(case.get('ratio'), '.2f'):>6} "
            f"{_fmt(page_ref.get('products_per_s')):>9} {_fmt(case.get('ratio_page'), '.2f'):>9} "
            f"{_fmt(memory.get('peak_rss_sum_mb'), '.0f'):>11} {_fmt(memory.get('peak_pss_sum_mb'), '.0f'):>11} "
            f"{_fmt(memory.get('pss_growth_mb'), '.0f'):>7} "
            f"{_fmt(max(per_process.values()) if per_process else None, '.0f'):>11} "
            f"{_fmt(steps.get('steps'), 'd'):>6} {_fmt(steps.get('step_p50_ms'), '.0f'):>11}"
            + (f"  ERROR: {case['error']}" if case.get("error") else "")
            + (f"  WARNING: {sync['warning']}" if sync.get("warning") else ""),
            file=out,
        )
    if memory_flatness:
        print("", file=out)
        for platform, flat in memory_flatness.items():
            print(
                f"memory {platform}: peak PSS {flat['largest']}/{flat['smallest']} products = "
                f"{flat['pss_ratio']:.2f}x, largest process {flat['process_ratio']:.2f}x (flat = 1.00); PSS growth "
                f"over the idle worker {flat['pss_growth_mb']['smallest']} MB -> {flat['pss_growth_mb']['largest']} MB",
                file=out,
            )
    print(
        "\nratio = sync products/s / raw upsert_products products/s (batches of 1,000, same payloads, same "
        "PostgreSQL, same run); ratio(pg) = against the raw upsert in the sync's own page size.",
        file=out,
    )


def memory_ratios(cases: list[dict[str, Any]]) -> dict[str, Any]:
    flatness: dict[str, Any] = {}
    for platform in PLATFORMS:
        done = sorted(
            (c for c in cases if c["platform"] == platform and c.get("sync", {}).get("memory")), key=lambda c: c["size"]
        )
        if len(done) < 2:
            continue
        small, large = done[0]["sync"]["memory"], done[-1]["sync"]["memory"]
        flatness[platform] = {
            "smallest": done[0]["size"],
            "largest": done[-1]["size"],
            "pss_ratio": round(large["peak_pss_sum_mb"] / small["peak_pss_sum_mb"], 2),
            "rss_ratio": round(large["peak_rss_sum_mb"] / small["peak_rss_sum_mb"], 2),
            "process_ratio": round(
                max(large["peak_rss_per_process_mb"].values()) / max(small["peak_rss_per_process_mb"].values()), 2
            ),
            "pss_growth_mb": {"smallest": small["pss_growth_mb"], "largest": large["pss_growth_mb"]},
        }
    return flatness


# --- Main ----------------------------------------------------------------------------------------------------


def run_case(
    platform: str, size: int, *, templates: list[Template] | None, env: dict[str, str], queue: str, args: Any
) -> dict[str, Any]:
    label = f"{platform} {size}"
    entry: dict[str, Any] = {"platform": platform, "size": size}
    case = open_case(platform, size, templates, args.shopify_restore_rate)
    try:
        entry["batch_size"] = case.batch_size
        if platform.startswith("shopify"):
            entry["shopify_bucket"] = {"maximum": SHOPIFY_BUCKET_MAX, "restore_rate": args.shopify_restore_rate}
        entry["reference"] = run_reference(case, REFERENCE_BATCH, Progress(label, args.timeout))
        if args.page_reference and case.batch_size != REFERENCE_BATCH:
            entry["reference_page"] = run_reference(case, case.batch_size, Progress(label, args.timeout))
        progress = Progress(label, args.timeout)
        entry["sync"] = run_sync(case, env=env, queue=queue, work_dir=args.work_dir, progress=progress)
        sync_speed = entry["sync"].get("products_per_s")
        for key, ref in (("ratio", "reference"), ("ratio_page", "reference_page")):
            ref_speed = (entry.get(ref) or {}).get("products_per_s")
            if sync_speed and ref_speed:
                entry[key] = round(sync_speed / ref_speed, 3)
    except BenchError as exc:
        entry["error"] = str(exc)[:2000]
        print(f"[{label}] failed: {str(exc)[:2000]}", file=sys.stderr)
    finally:
        close_case(case)
    return entry


def parse_args(argv: list[str] | None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--platforms", nargs="+", choices=PLATFORMS, default=list(PLATFORMS))
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (the table on stderr)")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds allowed per sync and per reference")
    parser.add_argument(
        "--shopify-restore-rate",
        type=float,
        default=SHOPIFY_RESTORE_RATE,
        help="the fake Shopify bucket's restore rate, points/s (default 1000, Plus); very high = unthrottled",
    )
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database number for the broker and cache")
    parser.add_argument(
        "--no-page-reference",
        dest="page_reference",
        action="store_false",
        help="skip the second reference (raw upsert in the sync's page size)",
    )
    parser.add_argument(
        "--database", default=DB_NAME, help="the database to drop, create and drop again (default bitrecs_bench)"
    )
    parser.add_argument("--keep-database", action="store_true", help="leave the bench database in place afterwards")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    queue = f"bench-sync-{uuid.uuid4().hex[:10]}"
    started_at = datetime.now(tz=UTC)
    out = sys.stderr if args.json else sys.stdout
    with tempfile.TemporaryDirectory(prefix="bitrecs-sync-bench-") as work:
        args.work_dir = RESULTS_DIR / f"sync-{started_at:%Y%m%dT%H%M%SZ}-logs"  # worker logs, kept
        args.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            use_database(args.database)
            check_services(args.redis_db)
            env = bench_environment(local_dir=str(Path(work) / "local"), queue=queue, redis_db=args.redis_db)
            os.environ.update(env)
            recreate_database()
        except BenchError as exc:
            print(f"sync bench: {exc}", file=sys.stderr)
            return 2
        cases: list[dict[str, Any]] = []
        try:
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", interactive=False, verbosity=0)
            templates = load_shopify_templates() if any(p.startswith("shopify") for p in args.platforms) else None
            for platform in args.platforms:
                for size in sorted(args.sizes):
                    cases.append(run_case(platform, size, templates=templates, env=env, queue=queue, args=args))
        except KeyboardInterrupt:
            print("\nsync bench: interrupted; cleaning up", file=sys.stderr)
        finally:
            from django.db import connections

            connections.close_all()
            _flush_bench_keys(args.redis_db, queue)
            if not args.keep_database:
                drop_database()
    flatness = memory_ratios(cases)
    report = {
        "benchmark": "catalog_sync",
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(tz=UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "worker": "celery prefork, concurrency 2, DJANGO_DEBUG=false",
            "shopify_bucket": {"maximum": SHOPIFY_BUCKET_MAX, "restore_rate": args.shopify_restore_rate},
            "reference_batch": REFERENCE_BATCH,
            "data": str(DATA_DIR),
        },
        "cases": cases,
        "memory_flatness": flatness,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"sync-{started_at:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print("", file=out)
    print_table(cases, flatness, out)
    print(f"\nresults: {path}", file=out)
    if args.json:
        print(json.dumps(report, default=str))
    return 1 if any("error" in case for case in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
