"""Widget endpoint benchmark: GET /api/v1/recommendations against a bare Django JsonResponse view.

    .venv/bin/python -m bench.widget_bench [--catalog PATH] [--duration 10] [--connections 16] [--rounds 3]
                                           [--skus 1000] [--answer-cache both|on|off]
                                           [--shared-answers auto|both|on|off] [--reseed] [--json]
                                           [--products N] [--personalised viewed|cart|both] [--port P]
                                           [--wait-live-engine] [--profile REQUESTS [--cprofile]]

What it does (EVALUATION.md "Speed": a ratio against a reference measured in the same run):

1. Seeds a bench database (SQLite under BENCH_DIR, default /tmp/bitrecs-widget-bench; or DATABASE_URL, e.g.
   PostgreSQL) with a store (site key `bench`) whose catalog is imported from --catalog (default: the 10k ASOS
   sample in ../shared/data when present, else the demo catalog in the repo), and builds its lists synchronously.
2. Starts gunicorn (2 sync workers, WIDGET_RATE_LIMIT=off, DEBUG off) on a free loopback port, serving
   bench.bench_settings, whose URLs add `GET /bench/bare`: a static JsonResponse of the same shape and size.
   The application is bitrecs_site.wsgi's, so the widget's answers go through its fast path. With
   `--shared-answers on` (the default `auto`: on when REDIS_URL is set, as in production) the workers share their
   rendered answers through that Redis; `both` measures with and without.
3. Drives both endpoints with the same load generator, the same connection count and duration, alternating
   which goes first per round: wrk (with a Lua script cycling through --skus product URLs; the bare view gets
   as many distinct URLs) when it is installed, else a bounded Python loop of threads with keep-alive
   connections. Each round is preceded by a short warm-up.
4. Prints requests/s, p50 and p99 of both, and the ratios widget/bare (throughput; p99), median over rounds.
   Targets (issue 10): throughput >= 1.0x the bare view's, p99 <= 1.2x. Each worker renders each answer once per
   RECS_ANSWER_CACHE_SECONDS (once in all with shared answers), so the share of requests that render falls as the
   request rate rises: below about (--skus / 10 s) requests/s per worker nearly every request renders. Also the
   gunicorn workers' CPU time per request of each (from /proc), as a ratio bare/widget: on a shared machine it
   moves far less with the other load than requests/s do, so it tells whether a throughput ratio is the endpoint
   or the neighbours.

Personalised answers (issue 13): `--products N` imports an N-product catalog (the --catalog rows repeated, each
repeat under a new SKU, an edition word and colour in its title and another price) into the store `bench-N` through
the real `manage.py import_catalog --build-now` (kept between runs unless --reseed); `--personalised viewed` makes
each request a random query SKU of that catalog with `viewed=` three other random SKUs (`cart` two in `cart=`,
`both` the two), --skus distinct URLs (default 20,000), so no answer cache can carry them. Targets: throughput
>= 0.5x the bare view's, p99 <= 2x. Each round also reports the gunicorn workers' RSS. The live engine answers only
when RECS_LIVE_ENGINE_MAX_PRODUCTS (default 5000) is above the catalog's size; `--wait-live-engine` then waits
until each worker has built its own before the rounds, and reports how long that took. `--profile R` runs R
requests in this process through bitrecs_site.wsgi's application instead and prints the milliseconds each phase
takes (see profile()).

gunicorn is started in its own process group and always stopped (also on Ctrl-C); every loop is bounded.
"""

import argparse
import contextlib
import gc
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED_CATALOG = BASE_DIR.parent / "shared" / "data" / "catalogs" / "asos" / "sample_10k.csv"
DEMO_CATALOG = BASE_DIR / "catalog_sync" / "fixtures" / "demo_catalog.csv"
BENCH_DIR = Path(os.environ.get("BENCH_DIR", "/tmp/bitrecs-widget-bench"))  # noqa: S108 (a scratch folder)
SITE_KEY = "bench"
SETTINGS_MODULE = "bench.bench_settings"
WARMUP_SECONDS = 2
SERVER_START_TIMEOUT = 60.0
SEED = 20240501


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _setup_django() -> None:
    os.environ["BITRECS_LOCAL_DIR"] = str(BENCH_DIR)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["WIDGET_RATE_LIMIT"] = "off"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()


def seed(*, catalog: Path, reseed: bool, sample: int) -> tuple[int, list[str]]:
    """Create the bench store with its catalog and lists (kept between runs unless reseed); return SKUs to ask for."""
    from django.core.management import call_command
    from django.db import connections

    from catalog_sync.models import Product
    from catalog_sync.services import import_catalog_file
    from merchants.models import Store
    from merchants.services.stores import create_store
    from recommendations.models import RecommendationList
    from recommendations.services import rebuild_store_lists

    call_command("migrate", verbosity=0)
    store = Store.objects.filter(site_key=SITE_KEY).first()
    if store is not None and (reseed or not RecommendationList.objects.filter(store=store).exists()):
        store.delete()
        store = None
    if store is None:
        store = create_store(platform="custom", domain="bench.local", site_key=SITE_KEY, name="Widget bench")
        started = time.monotonic()
        report = import_catalog_file(store=store, path=catalog)
        print(f"imported {report.products} products from {catalog} in {time.monotonic() - started:.1f}s")
        built = rebuild_store_lists(store=store)
        print(
            f"built lists: {built.product_lists} product, {built.cart_lists} cart, {built.home_lists} home "
            f"in {built.seconds:.1f}s"
        )
    with_lists = (
        Product.objects.filter(store=store, recommendation_lists__placement="product")
        .exclude(sku="")
        .values_list("sku", flat=True)
        .distinct()
        .order_by("sku")
    )
    skus = list(with_lists)
    products = Product.objects.filter(store=store).count()
    connections.close_all()
    random.Random(SEED).shuffle(skus)
    return products, skus[:sample]


VARIANTS = (
    "Classic",
    "Studio",
    "Weekend",
    "Urban",
    "Coastal",
    "Heritage",
    "Essential",
    "Nordic",
    "Midnight",
    "Summer",
    "Alpine",
    "Vintage",
    "Metro",
    "Festival",
    "Harbour",
    "Meadow",
    "Canyon",
    "Lagoon",
    "Ember",
    "Orchard",
)


def write_big_catalog(*, source: Path, products: int, path: Path) -> int:
    """An ASOS-column CSV of `products` rows: the source's rows repeated, each repeat under a new SKU (its id), a
    title with a different edition word and colour, and another price, so they are distinct products."""
    import csv

    with source.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("SKU", "").strip() and row.get("Name", "").strip()]
    colours = sorted({row.get("Color", "") for row in rows if row.get("Color")}) or ["Black"]
    columns = ["Name", "Categories", "Regular price", "Color", "SKU"]
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        repeat = 0
        while written < products:
            for index, row in enumerate(rows):
                if written >= products:
                    break
                if repeat == 0:
                    writer.writerow(row)
                else:
                    variant = VARIANTS[(repeat - 1) % len(VARIANTS)]
                    colour = colours[(index + repeat * 7) % len(colours)]
                    try:
                        price = f"{float(row['Regular price']) * (1 + 0.07 * repeat):.2f}"
                    except ValueError:
                        price = row["Regular price"]
                    name = f"{row['Name']} - {variant} edition {repeat} in {colour.lower()}"
                    categories = row.get("Categories", "")
                    writer.writerow(
                        {
                            "Name": name,
                            "Categories": name if categories == row["Name"] else categories,
                            "Regular price": price,
                            "Color": colour,
                            "SKU": f"{row['SKU'].strip()}-r{repeat}",
                        }
                    )
                written += 1
            repeat += 1
    return written


def seed_big(*, source: Path, products: int, reseed: bool) -> tuple[str, int, list[str]]:
    """The store `bench-N` with an N-product catalog imported by `manage.py import_catalog --build-now` (kept between
    runs unless reseed); returns its site key, its product count and every SKU of its catalog."""
    from django.core.management import call_command
    from django.db import connections

    from catalog_sync.models import Product
    from merchants.models import Store
    from merchants.services.stores import create_store
    from recommendations.models import RecommendationList

    site_key = f"{SITE_KEY}-{products}"
    call_command("migrate", verbosity=0)
    store = Store.objects.filter(site_key=site_key).first()
    if store is not None and (reseed or not RecommendationList.objects.filter(store=store).exists()):
        store.delete()
        store = None
    if store is None:
        store = create_store(platform="custom", domain=f"{site_key}.local", site_key=site_key, name=site_key)
        path = BENCH_DIR / f"asos_{products}.csv"
        write_big_catalog(source=source, products=products, path=path)
        started = time.monotonic()
        call_command("import_catalog", str(path), store=site_key, build_now=True)
        print(f"import_catalog --build-now of {products} products: {time.monotonic() - started:.1f}s")
    skus = sorted(Product.objects.filter(store=store).exclude(sku="").values_list("sku", flat=True))
    count = Product.objects.filter(store=store).count()
    connections.close_all()
    return site_key, count, skus


def personalised_paths(
    *, site_key: str, skus: list[str], mode: str, count: int, limit: int, rng: random.Random
) -> list[str]:
    """`count` widget URLs, each a random query SKU with `viewed=` three other random SKUs (mode viewed), `cart=`
    two (cart), or both, so that no two requests ask the same."""
    paths = []
    for _ in range(count):
        picked = rng.sample(skus, 6)
        query = f"/api/v1/recommendations?site_key={site_key}&sku={picked[0]}&limit={limit}"
        if mode in ("viewed", "both"):
            query += "&viewed=" + ",".join(picked[1:4])
        if mode in ("cart", "both"):
            query += "&cart=" + ",".join(picked[4:6])
        paths.append(query)
    return paths


def worker_rss_mb(arbiter: int) -> list[float]:
    """The resident memory (MB) of each of the gunicorn arbiter's workers."""
    sizes = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, log_path: Path, *, answer_cache_seconds: float, shared_answers_url: str = "off"
) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "BITRECS_LOCAL_DIR": str(BENCH_DIR),
        "WIDGET_RATE_LIMIT": "off",
        "RECS_ANSWER_CACHE_SECONDS": str(answer_cache_seconds),
        "RECS_SHARED_ANSWERS_URL": shared_answers_url,
    }
    command = [
        str(gunicorn),
        "bitrecs_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--worker-class",
        "sync",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log, start_new_session=True)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the arbiter and its workers: the group we started
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def worker_cpu_seconds(arbiter: int) -> float:
    """User + system CPU seconds used so far by the gunicorn arbiter's worker processes (0 when unreadable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
        for child in children:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15)
    return total


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited while starting; see its log")
        try:
            if _get(port, "/healthz", timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {SERVER_START_TIMEOUT:.0f}s")


LIVE_ENGINE_TIMEOUT = 900.0


def wait_for_live_engines(port: int, server: subprocess.Popen[bytes], paths: list[str]) -> float:
    """Ask personalised answers until every worker has started its live engine's build (a background thread), then
    wait until the workers go idle (the builds done); returns the seconds from the first request."""
    started = time.monotonic()
    for path in paths[:16]:
        _get(port, path, timeout=30.0)
    deadline = started + LIVE_ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        before = worker_cpu_seconds(server.pid)
        time.sleep(3.0)
        if worker_cpu_seconds(server.pid) - before < 0.3:
            return time.monotonic() - started - 3.0
    raise RuntimeError(f"the live engines were still building after {LIVE_ENGINE_TIMEOUT:.0f}s")


# --- load generators ---------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(name: str, port: int, paths: list[str], *, duration: int, connections: int) -> LoadResult:
    """One wrk run cycling through paths (each wrk thread walks the list from its own offset)."""
    lines = ",\n".join(json.dumps(p) for p in paths)
    script = (
        f"local paths = {{\n{lines}\n}}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(#paths)) end\n"
        "function init(args) i = tonumber(offset) or 0 end\n"
        "function request()\n"
        "  i = i + 1\n"
        "  return wrk.format('GET', paths[(i % #paths) + 1])\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    try:
        command = [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            script_path,
            f"http://127.0.0.1:{port}",
        ]
        output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    finally:
        os.unlink(script_path)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, flags=re.MULTILINE))
    requests_match = re.search(r"(\d+) requests in ([\d.]+)(s|m)", output)
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests_match is None or rps_match is None or "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    seconds = float(requests_match.group(2)) * (60 if requests_match.group(3) == "m" else 1)
    return LoadResult(
        name=name,
        requests=int(requests_match.group(1)),
        seconds=seconds,
        rps=float(rps_match.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        errors=errors,
    )


def run_python_load(
    name: str, port: int, paths: list[str], *, duration: int, connections: int, bodies: list[bytes] | None = None
) -> LoadResult:
    """Fallback load loop: one thread per connection, keep-alive when the server allows, bounded by duration.

    With `bodies`, each request is a POST of the next body (text/plain, as sendBeacon sends it).
    """
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + duration

    def worker(index: int) -> None:
        connection: http.client.HTTPConnection | None = None
        position = index * 7919
        while time.monotonic() < deadline:
            path = paths[position % len(paths)]
            position += 1
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if bodies:
                    body = bodies[position % len(bodies)]
                    connection.request("POST", path, body=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
                else:
                    connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status >= 400:
                    errors[index] += 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                if connection is not None:
                    connection.close()
                connection = None
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)
        if connection is not None:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 30)
    seconds = time.monotonic() - started
    merged = sorted(x for chunk in latencies for x in chunk)
    if not merged:
        raise RuntimeError(f"{name}: no request succeeded")
    return LoadResult(
        name=name,
        requests=len(merged),
        seconds=round(seconds, 2),
        rps=round(len(merged) / seconds, 1),
        p50_ms=round(merged[len(merged) // 2], 3),
        p99_ms=round(merged[min(len(merged) - 1, int(len(merged) * 0.99))], 3),
        errors=sum(errors),
    )


# --- in-process profile ------------------------------------------------------------------------------------------


def _environ(path: str) -> dict[str, Any]:
    route, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }


def profile(*, site_key: str, paths: list[str], requests: int, cprofile: bool) -> dict[str, Any]:
    """Run `requests` of the paths through bitrecs_site.wsgi's application in this process, timing each phase of
    the answer (wrapped functions, perf_counter): the whole WSGI call, the view's render_answer, the selector's
    get_recommendations, and inside it the query SKU's lists, the session SKUs' ids, the live engine's recommend(),
    the session products' stored lists, the rules with the product rows, and attribution. With cprofile, also the
    top functions by cumulative time. The live engine is built first (when RECS_LIVE_ENGINE_MAX_PRODUCTS allows):
    its build time and the process's RSS before and after are reported."""
    import cProfile
    import pstats
    import resource

    from bitrecs_site.wsgi import application
    from merchants.models import Store
    from recommendations import fast_path, process_state
    from recommendations.engine import Recommender
    from recommendations.selectors import serving
    from recommendations.views import widget

    store = Store.objects.get(site_key=site_key)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    engine = process_state.warm_live_engine(store_id=store.id)
    build_seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    totals: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begun = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - begun

        return wrapper

    patches = [
        (widget, "render_answer", "render_answer (view: store, arm, selector, JSON)"),
        (fast_path, "render_answer", "render_answer (view: store, arm, selector, JSON)"),
        (widget, "get_recommendations", "get_recommendations (selector)"),
        (serving, "_lists_for_sku", "  query SKU -> its stored lists"),
        (serving, "get_external_ids_for_skus", "  session SKUs -> product ids"),
        (serving, "_session_lists", "  session products' stored lists (no live engine)"),
        (serving, "_select", "  rules + product rows"),
        (serving, "_attribution", "  attribution"),
        (Recommender, "recommend", "  live engine recommend()"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, label in patches:
        setattr(owner, name, timed(label, getattr(owner, name)))

    def call(path: str) -> None:
        statuses: list[str] = []
        body = b"".join(application(_environ(path), lambda status, headers, *_: statuses.append(status)))
        if not statuses or not statuses[0].startswith("200") or not json.loads(body)["items"]:
            raise RuntimeError(f"{path}: {statuses} {body[:200]!r}")

    gc_started: list[float] = []

    def gc_timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            name = f"  garbage collection (generation {info.get('generation')})"
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - gc_started.pop()

    profiler = cProfile.Profile() if cprofile else None
    gc.callbacks.append(gc_timer)
    try:
        for path in paths[:20]:
            call(path)  # warm-up: the store's caches, the serializer, the connection
        totals.clear()
        wsgi = timed("WSGI call (all of it)", call)
        if profiler is not None:
            profiler.enable()
        for index in range(requests):
            wsgi(paths[20 + index % (len(paths) - 20)])
        if profiler is not None:
            profiler.disable()
    finally:
        gc.callbacks.remove(gc_timer)
        for owner, name, original in originals:
            setattr(owner, name, original)
    per_request = {name: round(seconds / requests * 1000, 3) for name, seconds in totals.items()}
    result: dict[str, Any] = {
        "requests": requests,
        "live_engine": engine is not None,
        "live_engine_build_s": round(build_seconds, 2),
        "max_rss_mb_before_build": round(rss_before, 1),
        "max_rss_mb_after_build": round(rss_after, 1),
        "ms_per_request": dict(sorted(per_request.items(), key=lambda kv: -kv[1])),
    }
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(35)
        result["cprofile"] = stream.getvalue()
    return result


# --- main ----------------------------------------------------------------------------------------------------------


def measure(
    *,
    answer_cache_seconds: float,
    shared_answers_url: str,
    widget_paths: list[str],
    bare_paths: list[str],
    load: Any,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Start a server with this answer-cache setting, run the bare/widget rounds, stop it; return the rounds."""
    port = args.port or _free_port()
    server = start_server(
        port,
        BENCH_DIR / "gunicorn.log",
        answer_cache_seconds=answer_cache_seconds,
        shared_answers_url=shared_answers_url,
    )
    rows: list[dict[str, Any]] = []
    label = f"answer cache {answer_cache_seconds:g}s" if answer_cache_seconds > 0 else "answer cache off"
    if answer_cache_seconds > 0 and shared_answers_url != "off":
        label += " + shared (Redis)"
    try:
        started = time.monotonic()
        wait_until_up(port, server)
        up_seconds = time.monotonic() - started
        status, body = _get(port, widget_paths[0])
        answer = json.loads(body)
        engine_seconds = wait_for_live_engines(port, server, widget_paths) if args.wait_live_engine else None
        if engine_seconds is not None and not args.json:
            print(f"[{label}] live engines built in {engine_seconds:.1f}s; worker RSS {worker_rss_mb(server.pid)} MB")
        if status != 200 or not answer.get("items"):
            raise RuntimeError(f"the widget endpoint answered {status}: {body[:300]!r}")
        if not args.json:
            print(
                f"[{label}] up in {up_seconds:.1f}s; sample answer: {len(answer['items'])} items, source "
                f"{answer['source']}; worker RSS {worker_rss_mb(server.pid)} MB"
            )
        for round_number in range(args.rounds):
            order = [("bare", bare_paths), ("widget", widget_paths)]
            if round_number % 2:
                order.reverse()
            measured: dict[str, LoadResult] = {}
            cpu_us: dict[str, float] = {}
            for name, paths in order:
                load(name, port, paths, duration=WARMUP_SECONDS, connections=args.connections)
                before = worker_cpu_seconds(server.pid)
                measured[name] = load(name, port, paths, duration=args.duration, connections=args.connections)
                cpu_us[name] = (worker_cpu_seconds(server.pid) - before) / max(measured[name].requests, 1) * 1e6
            bare, widget = measured["bare"], measured["widget"]
            row = {
                "round": round_number + 1,
                "bare": {**asdict(bare), "cpu_us_per_request": round(cpu_us["bare"], 1)},
                "widget": {**asdict(widget), "cpu_us_per_request": round(cpu_us["widget"], 1)},
                "throughput_ratio": round(widget.rps / bare.rps, 3),
                "p99_ratio": round(widget.p99_ms / bare.p99_ms, 3),
                "cpu_ratio": round(cpu_us["bare"] / cpu_us["widget"], 3) if cpu_us["widget"] else 0.0,
                "worker_rss_mb": worker_rss_mb(server.pid),
                "up_s": round(up_seconds, 1),
                "live_engines_built_s": None if engine_seconds is None else round(engine_seconds, 1),
            }
            rows.append(row)
            if not args.json:
                print(
                    f"[{label}] round {row['round']}: bare {bare.rps:6.0f} req/s p50 {bare.p50_ms:5.2f} ms "
                    f"p99 {bare.p99_ms:6.2f} ms | widget {widget.rps:6.0f} req/s p50 {widget.p50_ms:5.2f} ms "
                    f"p99 {widget.p99_ms:6.2f} ms | {row['throughput_ratio']:.2f}x throughput, "
                    f"{row['p99_ratio']:.2f}x p99 | CPU/request bare {cpu_us['bare']:.0f} us, widget "
                    f"{cpu_us['widget']:.0f} us ({row['cpu_ratio']:.2f}x) | errors {bare.errors}/{widget.errors} | "
                    f"worker RSS "
                    f"{row['worker_rss_mb']} MB"
                )
    finally:
        stop_server(server)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    def median(key: str, sub: str | None = None) -> float:
        values = [float(r[key][sub]) if sub else float(r[key]) for r in rows]
        return round(statistics.median(values), 3)

    return {
        "bare_rps": median("bare", "rps"),
        "bare_p50_ms": median("bare", "p50_ms"),
        "bare_p99_ms": median("bare", "p99_ms"),
        "widget_rps": median("widget", "rps"),
        "widget_p50_ms": median("widget", "p50_ms"),
        "widget_p99_ms": median("widget", "p99_ms"),
        "throughput_ratio": median("throughput_ratio"),
        "p99_ratio": median("p99_ratio"),
        "bare_cpu_us_per_request": median("bare", "cpu_us_per_request"),
        "widget_cpu_us_per_request": median("widget", "cpu_us_per_request"),
        "cpu_ratio": median("cpu_ratio"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=SHARED_CATALOG if SHARED_CATALOG.exists() else DEMO_CATALOG)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="bare/widget pairs, alternating order (default 3)")
    parser.add_argument("--skus", type=int, default=0, help="distinct URLs cycled through (default 1000)")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument(
        "--answer-cache",
        choices=["both", "on", "off"],
        default="both",
        help="the answer cache as configured (RECS_ANSWER_CACHE_SECONDS, default 10 s), off, or both",
    )
    parser.add_argument(
        "--shared-answers",
        choices=["auto", "both", "on", "off"],
        default="auto",
        help="answers shared by the workers through Redis (RECS_SHARED_ANSWERS_URL = REDIS_URL): on, off, both, or "
        "auto (on when REDIS_URL is set, as in production)",
    )
    parser.add_argument(
        "--personalised",
        choices=["viewed", "cart", "both"],
        default=None,
        help="personalised requests: each a random query SKU with viewed= three random SKUs, cart= two, or both "
        "(never the same twice; --skus is then the number of distinct URLs, default 20000)",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=0,
        help="a catalog of this many products (the --catalog rows repeated under new SKUs and titles), imported by "
        "manage.py import_catalog --build-now into the store bench-N",
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="instead of the HTTP rounds: this many requests in this process, with the time of each phase",
    )
    parser.add_argument("--cprofile", action="store_true", help="with --profile: cProfile's top functions too")
    parser.add_argument(
        "--wait-live-engine",
        action="store_true",
        help="before the rounds, wait until each worker has built its live engine (set RECS_LIVE_ENGINE_MAX_PRODUCTS "
        "above the catalog's size for one at --products 100000; the default 5000 leaves such stores to stored lists)",
    )
    parser.add_argument("--reseed", action="store_true", help="rebuild the bench store from the catalog")
    parser.add_argument("--python-load", action="store_true", help="use the Python load loop even if wrk exists")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)

    _setup_django()
    from django.conf import settings

    distinct = args.skus or (20_000 if args.personalised else 1000)
    if args.products > 0:
        site_key, products, every_sku = seed_big(source=args.catalog, products=args.products, reseed=args.reseed)
        rng = random.Random(SEED)
        skus = rng.sample(every_sku, min(distinct, len(every_sku))) if not args.personalised else every_sku
    else:
        site_key = SITE_KEY
        products, skus = seed(catalog=args.catalog, reseed=args.reseed, sample=distinct)
    if len(skus) < 6:
        print("the bench store has too few products with a SKU and a list", file=sys.stderr)
        return 1
    if args.personalised:
        widget_paths = personalised_paths(
            site_key=site_key,
            skus=skus,
            mode=args.personalised,
            count=distinct,
            limit=args.limit,
            rng=random.Random(SEED + 1),
        )
    else:
        widget_paths = [f"/api/v1/recommendations?site_key={site_key}&sku={sku}&limit={args.limit}" for sku in skus]
    bare_paths = [f"/bench/bare?n={n}" for n in range(len(widget_paths))]
    if args.profile:
        result = profile(site_key=site_key, paths=widget_paths, requests=args.profile, cprofile=args.cprofile)
        if args.json:
            print(json.dumps(result))
            return 0
        print(result.pop("cprofile", ""))
        table = result.pop("ms_per_request")
        print(json.dumps(result))
        print(f"{products} products, {args.personalised or 'plain'} requests, ms per request (in-process):")
        for name, ms in table.items():
            print(f"  {ms:8.3f}  {name}")
        return 0
    use_wrk = shutil.which("wrk") is not None and not args.python_load
    load = run_wrk if use_wrk else run_python_load
    generator = "wrk (2 threads, Lua script cycling URLs)" if use_wrk else "Python threads with keep-alive"
    configured = float(settings.RECS_ANSWER_CACHE_SECONDS)
    redis_url = os.environ.get("REDIS_URL", "")
    shared = args.shared_answers if args.shared_answers != "auto" else ("on" if redis_url else "off")
    if shared != "off" and not redis_url:
        print("--shared-answers on/both needs REDIS_URL (e.g. redis://127.0.0.1:6379/15)", file=sys.stderr)
        return 1
    shared_urls = {"on": [redis_url], "off": ["off"], "both": [redis_url, "off"]}[shared]
    cache_seconds = {"on": [configured], "off": [0.0], "both": [configured, 0.0]}[args.answer_cache]
    modes = [(seconds, url) for seconds in cache_seconds for url in (shared_urls if seconds > 0 else ["off"])]
    if not args.json:
        print(
            f"catalog: {products} products; {len(skus)} SKUs cycled; load: {generator}; {args.connections} "
            f"connections, {args.duration}s x {args.rounds} rounds per mode; gunicorn 2 sync workers, DEBUG off"
        )
    summary: dict[str, Any] = {
        "generator": generator,
        "products": products,
        "skus": len(skus),
        "personalised": args.personalised,
        "distinct_urls": len(widget_paths),
        "connections": args.connections,
        "duration_s": args.duration,
        "modes": {},
    }
    for seconds, url in modes:
        rows = measure(
            answer_cache_seconds=seconds,
            shared_answers_url=url,
            widget_paths=widget_paths,
            bare_paths=bare_paths,
            load=load,
            args=args,
        )
        name = f"answer_cache_{seconds:g}s" if seconds > 0 else "answer_cache_off"
        if seconds > 0 and url != "off":
            name += "_shared"
        summary["modes"][name] = {"rounds": rows, "median": summarise(rows)}

    results_dir = BASE_DIR / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"widget_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary))
        return 0
    targets = ("0.5", "2") if args.personalised else ("1.0", "1.2")  # issue 13 (personalised), issue 10
    for name, mode in summary["modes"].items():
        m = mode["median"]
        print(
            f"median [{name}]: bare {m['bare_rps']:.0f} req/s (p50 {m['bare_p50_ms']:.2f} ms, p99 "
            f"{m['bare_p99_ms']:.2f} ms); widget {m['widget_rps']:.0f} req/s (p50 {m['widget_p50_ms']:.2f} ms, "
            f"p99 {m['widget_p99_ms']:.2f} ms); widget/bare {m['throughput_ratio']:.2f}x throughput "
            f"(target >= {targets[0]}), {m['p99_ratio']:.2f}x p99 (target <= {targets[1]}); CPU/request bare "
            f"{m['bare_cpu_us_per_request']:.0f} us, widget {m['widget_cpu_us_per_request']:.0f} us "
            f"({m['cpu_ratio']:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
