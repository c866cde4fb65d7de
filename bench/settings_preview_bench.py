"""Portal settings benchmark: the rule preview and "why this list" against the widget's own answer, same run.

    .venv/bin/python -m bench.settings_preview_bench [--products 10000] [--rounds 20] [--json]

Seeds a scratch SQLite database (BENCH_DIR, default /tmp/bitrecs-settings-bench; or DATABASE_URL) with one store
of --products products (tags on one in ten, one in twenty out of stock) and a stored 20-item product list for 200
of them, then times, alternating per round:

- reference: `get_recommendations` for one SKU (what the widget's selector does on an answer-cache miss);
- explain: `explain_recommendations` for the same SKU (the "why this list" page's read);
- preview: `preview_merchant_rules` with a tag, SKU and price rule (the settings page's Preview button: two
  catalog-wide passes over every product plus the product's list before and after).

Prints the medians and the ratios explain/reference and preview/reference (the machine is shared: ratios only).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(os.environ.get("BENCH_DIR", Path(tempfile.gettempdir()) / "bitrecs-settings-bench"))


def _setup() -> None:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}")
    os.environ.setdefault("BITRECS_LOCAL_DIR", str(BENCH_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")  # DEBUG off: no SQL kept per query
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _seed(products: int) -> Any:
    from decimal import Decimal

    from catalog_sync.models import Product
    from merchants.models import Store
    from recommendations.models import RecommendationList, generate_rec_id

    Store.objects.filter(domain="bench-settings.example").delete()
    store = Store.objects.create(platform=Store.Platform.CUSTOM, domain="bench-settings.example", status="active")
    Product.objects.bulk_create(
        [
            Product(
                store=store,
                external_id=f"p{n}",
                sku=f"SKU-{n}",
                title=f"Product {n}",
                price=Decimal(10 + n % 90),
                tags=["clearance"] if n % 10 == 0 else ["new"],
                category_path="Apparel > Socks" if n % 7 == 0 else "Apparel > Shirts",
                in_stock=n % 20 != 0,
            )
            for n in range(products)
        ],
        batch_size=2000,
    )
    by_id = dict(
        Product.objects.filter(store=store, external_id__in=[f"p{n}" for n in range(200)]).values_list(
            "external_id", "id"
        )
    )
    RecommendationList.objects.bulk_create(
        [
            RecommendationList(
                store=store,
                product_id=by_id[f"p{q}"],
                query_id=f"p{q}",
                placement="product",
                source="local",
                items=[[f"p{(q * 37 + k * 11) % products}", 1 - k / 40, "similar"] for k in range(1, 21)],
                rec_id=generate_rec_id("local"),
            )
            for q in range(200)
        ]
    )
    return store


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or --json) its medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _setup()
    from recommendations.selectors import build_serving_store, get_recommendations
    from recommendations.selectors.explain import explain_recommendations, preview_merchant_rules

    store = _seed(args.products)
    serving = build_serving_store(store=store)
    proposed = {"recommendations": {"exclude_tags": ["clearance"], "exclude_skus": ["SKU-11"], "price_max_ratio": 1.5}}
    cases = {
        "reference": lambda: get_recommendations(store=serving, placement="product", sku="SKU-3", limit=4),
        "explain": lambda: explain_recommendations(store=serving, placement="product", sku="SKU-3", limit=4),
        "preview": lambda: preview_merchant_rules(
            store=store, proposed_settings=proposed, placement="product", sku="SKU-3", limit=4
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
        for name in order:
            started = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "products": args.products,
        "rounds": args.rounds,
        "median_ms": {name: round(value * 1000, 2) for name, value in medians.items()},
        "explain_over_reference": round(medians["explain"] / medians["reference"], 1),
        "preview_over_reference": round(medians["preview"] / medians["reference"], 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
