"""Recommender benchmark: index build time and per-query p50/p99 at several catalog sizes.

    .venv/bin/python -m bench.recommender_bench [--sizes 1000 10000 100000] [--queries 300]

Catalogs are built from the real rows in ../shared/data/catalogs (Walmart, ASOS, WooCommerce, Shopify),
mixed round-robin; sizes beyond the real rows are filled with recombined items (the title of one real
row plus the distinguishing tail of another, the brand/category/price of a third) under new ids, so the
vocabulary and near-duplicate structure stay realistic. Everything is seeded.

The machine is shared and noisy, so every figure is printed beside a reference measured in the same run
(EVALUATION.md "Speed"): a fixed dense float32 matrix product (128 x 256 @ 256 x 4096, median of 9) and
the TF-IDF vectorisation of the same catalog alone. Read build times as multiples of the vectorisation.
Query times are read against a plain TF-IDF top-10 on the same catalog, timed in the same run the same way
(word 1-2-gram TF-IDF as shared/tools/baselines.py --scale-items: one item's cosine to all through the sparse
postings, an argpartition top-10): each placement's p99 is printed as a multiple of the reference's p99.

Memory: the bytes of the built index's arrays (text matrix, neighbour graph, order signals, per-item vectors),
the process's resident-set growth over the build (after the smaller sizes: freed memory is reused), and the time
and resident-set growth of loading the saved engine (engine/snapshot.py, what web processes load instead of
building) in a fresh process.
"""

import argparse
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommendations.engine.core import CatalogItem, EngineConfig, Recommender, _item_text
from recommendations.engine.snapshot import save_engine
from recommendations.engine.text import fit_tfidf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalogs"
SEED = 20240501


def _price(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def real_items() -> list[CatalogItem]:
    """Every usable real row, as CatalogItems, sources interleaved round-robin."""
    sources: list[list[CatalogItem]] = []
    walmart = [
        CatalogItem(
            id=f"wm-{row['UNIQUE_ID']}",
            title=row["PRODUCT_NAME"],
            vendor=row.get("BRAND", ""),
            category_path=row.get("CATEGORY", "").replace("|", ">"),
            price=_price(row.get("SALE_PRICE")),
        )
        for row in _rows(DATA / "walmart" / "wallmart_5k_kaggle_trimmed.csv")
        if row.get("PRODUCT_NAME")
    ]
    asos = [
        CatalogItem(
            id=f"asos-{n}",
            title=row["Name"],
            vendor=row["Name"].split(" ")[0],
            tags=(row.get("Color", ""),),
            price=_price(row.get("Regular price")),
        )
        for n, row in enumerate(_rows(DATA / "asos" / "asos_30k_trimmed.csv"))
        if row.get("Name")
    ]
    woo = [
        CatalogItem(
            id=f"woo-{row['ID']}",
            title=row["Name"],
            category_path=row.get("Categories", "").split(",")[-1],
            tags=tuple(t.strip() for t in row.get("Tags", "").split(",") if t.strip()),
            description=row.get("Short description", ""),
            price=_price(row.get("Regular price")),
        )
        for row in _rows(DATA / "woocommerce" / "product_catalog.csv")
        if row.get("Name")
    ]
    shopify = [
        CatalogItem(
            id=f"shop-{n}",
            title=row["Title"],
            vendor=row.get("Vendor", ""),
            product_type=row.get("Type", ""),
            category_path=row.get("Product Category", ""),
            tags=tuple(t.strip() for t in row.get("Tags", "").split(",") if t.strip()),
            price=_price(row.get("Variant Price")),
        )
        for n, row in enumerate(_rows(DATA / "shopify" / "electronics_products.csv"))
        if row.get("Title")
    ]
    sources = [s for s in (walmart, asos, woo, shopify) if s]
    out: list[CatalogItem] = []
    seen: set[str] = set()
    for position in range(max((len(s) for s in sources), default=0)):
        for source in sources:
            if position < len(source) and source[position].id not in seen:
                seen.add(source[position].id)
                out.append(source[position])
    return out


def synthetic_catalog(size: int, real: list[CatalogItem], seed: int = SEED) -> list[CatalogItem]:
    """size items: the real rows first, then recombinations of them under new ids."""
    if not real:
        raise SystemExit(f"no catalog rows under {DATA}")
    items = list(real[:size])
    rng = random.Random(seed)
    while len(items) < size:
        head, tail, meta = (real[rng.randrange(len(real))] for _ in range(3))
        head_words = head.title.split()
        tail_words = tail.title.split()
        cut = max(1, len(head_words) // 2)
        title = " ".join(head_words[:cut] + tail_words[len(tail_words) // 2 :])
        items.append(
            CatalogItem(
                id=f"syn-{len(items)}",
                title=title,
                vendor=meta.vendor,
                category_path=meta.category_path,
                tags=head.tags,
                price=None if meta.price is None else round(meta.price * rng.uniform(0.8, 1.2), 2),
            )
        )
    return items


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reference_matmul() -> float:
    """Median seconds of a fixed float32 product (the same work on every run and machine)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 256), dtype=np.float32)
    b = rng.standard_normal((256, 4096), dtype=np.float32)
    return statistics.median(_timed(lambda: a @ b) for _ in range(9))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def rss_bytes() -> int:
    """The process's current resident set (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return 0


_PAGE = 4096


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if sp.issparse(value):
        return sum(int(getattr(value, part).nbytes) for part in ("data", "indices", "indptr") if hasattr(value, part))
    return 0


def index_memory(engine: Recommender) -> dict[str, int]:
    """Bytes of the index's arrays by part: the text matrix, the neighbour graph, the order signals (matrices and
    vectors), the per-item query vectors (hubness, prior, group, price, home order)."""
    signals = engine._signals
    parts = {
        "matrix": _nbytes(engine._matrix),
        "graph": _nbytes(engine._neighbour_ids) + _nbytes(engine._neighbour_sims),
        "signals": sum(_nbytes(v) for v in vars(signals).values()),
    }
    counted = {id(engine._matrix), id(engine._neighbour_ids), id(engine._neighbour_sims)}
    parts["vectors"] = sum(_nbytes(v) for v in vars(engine).values() if id(v) not in counted)
    return parts


def reference_tfidf(items: list[CatalogItem], seed: int) -> Callable[[], object]:
    """One plain TF-IDF top-10 query over the catalog, a random item each call (baselines.py --scale-items: word
    1-2-grams, sublinear tf, one item's cosine to all through the postings, an argpartition top-10 then sorted)."""
    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
    matrix = vectoriser.fit_transform([_item_text(item) for item in items]).tocsr()
    postings = matrix.T.tocsr()
    rng = random.Random(seed)
    n = matrix.shape[0]
    k = min(10, n - 1)

    def top10() -> np.ndarray:
        q = rng.randrange(n)
        scores = np.asarray((matrix[q] @ postings).todense()).ravel()
        scores[q] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    return top10


def bench_queries(engine: Recommender, items: list[CatalogItem], *, queries: int, seed: int) -> dict[str, float]:
    """p50/p99 ms per placement (random queries and sessions) and of the plain TF-IDF reference. The calls are
    interleaved (one of each per round), so the reference and the placements share the machine's load."""
    rng = random.Random(seed)
    ids = [item.id for item in items]
    shapes: dict[str, Callable[[], object]] = {
        "reference": reference_tfidf(items, seed),
        "product": lambda: engine.recommend(query_id=rng.choice(ids), placement="product"),
        "product+session": lambda: engine.recommend(
            query_id=rng.choice(ids), placement="product", session_ids=rng.sample(ids, 4)
        ),
        "cart": lambda: engine.recommend(query_id=None, placement="cart", session_ids=rng.sample(ids, 3)),
        "home": lambda: engine.recommend(query_id=None, placement="home", session_ids=rng.sample(ids, 2)),
    }
    times: dict[str, list[float]] = {name: [] for name in shapes}
    for round_ in range(5 + queries):  # 5 warm-up rounds
        for name, call in shapes.items():
            elapsed = _timed(call) * 1000
            if round_ >= 5:
                times[name].append(elapsed)
    result: dict[str, float] = {}
    for name, values in times.items():
        result[f"{name}_p50_ms"] = percentile(values, 50)
        result[f"{name}_p99_ms"] = percentile(values, 99)
    return result


_LOAD_RSS = """
import sys, time
from pathlib import Path
import numpy, scipy.sparse, sklearn.feature_extraction.text
from recommendations.engine.snapshot import load_engine
from bench.recommender_bench import rss_bytes
before = rss_bytes()
start = time.perf_counter()
engine = load_engine(Path(sys.argv[1]))
print(rss_bytes() - before, time.perf_counter() - start)
"""


def load_rss(engine: Recommender) -> tuple[int, int, float]:
    """(RSS growth of loading the saved engine in a fresh process, the file's size in bytes, the load's seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "engine.npz"
        save_engine(engine, path)
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_RSS, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        rss, seconds = out.stdout.split()
        return int(rss), os.path.getsize(path), float(seconds)


def bench_memory(engine: Recommender, *, build_rss: int) -> dict[str, float]:
    """The index's array bytes by part, and the RSS growth of its build and of loading the saved engine."""
    parts = index_memory(engine)
    result: dict[str, float] = {f"{part}_bytes": float(b) for part, b in parts.items()}
    result["index_bytes"] = float(sum(parts.values()))
    result["build_rss_bytes"] = float(build_rss)
    loaded, size, seconds = load_rss(engine)
    result["load_rss_bytes"], result["saved_bytes"], result["load_s"] = float(loaded), float(size), seconds
    return result


def bench_size(size: int, real: list[CatalogItem], *, queries: int, config: EngineConfig) -> dict[str, float]:
    items = synthetic_catalog(size, real)
    texts = [_item_text(item) for item in items]
    vectorise = _timed(
        lambda: fit_tfidf(texts, analyzer="char_wb", ngram_range=(3, 5), max_features=config.max_char_features)
    )
    rss = rss_bytes()
    start = time.perf_counter()
    engine = Recommender.build(items, config=config)
    build = time.perf_counter() - start
    build_rss = rss_bytes() - rss
    result: dict[str, float] = {"items": float(len(items)), "build_s": build, "vectorise_s": vectorise}
    result.update(bench_queries(engine, items, queries=queries, seed=SEED + size))
    result.update(bench_memory(engine, build_rss=build_rss))
    return result


PLACEMENTS = ("product", "product+session", "cart", "home")


def query_lines(r: dict[str, float]) -> list[str]:
    """The query and memory lines of one size."""
    ref50, ref99 = r["reference_p50_ms"], r["reference_p99_ms"]
    cells = [f"tfidf top-10 reference {ref50:.2f}/{ref99:.2f}"]
    for name in PLACEMENTS:
        p50, p99 = r[f"{name}_p50_ms"], r[f"{name}_p99_ms"]
        cells.append(f"{name} {p50:.2f}/{p99:.2f} ({p99 / max(ref99, 1e-9):.2f}x)")
    per_100k = 100_000 / max(r["items"], 1.0)
    mib = 1 << 20
    parts = ", ".join(f"{part} {r[f'{part}_bytes'] / mib:.1f}" for part in ("matrix", "graph", "signals", "vectors"))
    return [
        "  queries p50/p99 ms (p99 as x reference p99): " + "; ".join(cells),
        f"  memory MiB: index arrays {r['index_bytes'] / mib:.1f} ({parts}; "
        f"{r['index_bytes'] * per_100k / mib:.0f} per 100k items); RSS growth: build {r['build_rss_bytes'] / mib:.0f}, "
        f"loading the saved engine {r['load_rss_bytes'] / mib:.0f} (file {r['saved_bytes'] / mib:.0f}; "
        f"{r['load_s']:.2f} s, build/load {r['build_s'] / max(r['load_s'], 1e-9):.0f}x)",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=300, help="Queries per placement and size.")
    args = parser.parse_args(argv)
    config = EngineConfig()
    real = real_items()
    ref = reference_matmul()
    print(f"real rows: {len(real)}; reference matmul (128x256 @ 256x4096 float32): {ref * 1000:.2f} ms")
    header = (
        f"{'items':>7} {'build s':>8} {'vect s':>7} {'build/vect':>10}  "
        + "  ".join(f"{name:>17}" for name in ("product", "product+session", "cart", "home"))
        + "   (p50/p99 ms; p50 as x ref)"
    )
    print(header)
    for size in args.sizes:
        r = bench_size(size, real, queries=args.queries, config=config)
        cells = []
        for name in ("product", "product+session", "cart", "home"):
            p50, p99 = r[f"{name}_p50_ms"], r[f"{name}_p99_ms"]
            cells.append(f"{p50:6.2f}/{p99:6.2f} {p50 / (ref * 1000):5.2f}x")
        print(
            f"{int(r['items']):>7} {r['build_s']:>8.2f} {r['vectorise_s']:>7.2f} "
            f"{r['build_s'] / max(r['vectorise_s'], 1e-9):>10.1f}  " + "  ".join(f"{c:>17}" for c in cells),
            flush=True,
        )
        for line in query_lines(r):
            print(line, flush=True)


if __name__ == "__main__":
    main()
