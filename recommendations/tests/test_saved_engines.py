"""Saved engines: a worker's build written to one file and loaded by the web processes instead of building their own."""

import dataclasses
import os
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.engine import CatalogItem, EngineConfig, Recommender
from recommendations.engine.behaviour import Order
from recommendations.engine.loader import engine_snapshot_path
from recommendations.engine.snapshot import FORMAT, SnapshotError, load_engine, save_engine
from recommendations.process_state import warm_live_engine
from recommendations.services import prune_saved_engines, rebuild_store_lists
from recommendations.tests.test_lists import make_catalog, order

DAY = 86400.0


def small_store_engine() -> Recommender:
    """Text, order signals and self-tuning: 30 customers each buying a mug, then its saucer."""
    items = [
        *(
            CatalogItem(id=f"mug{k}", title=f"Ceramic mug {c}", price=8.0 + k)
            for k, c in enumerate(["red", "blue", "green"])
        ),
        *(CatalogItem(id=f"saucer{k}", title=f"Saucer plate {k}", vendor="Kiln", tags=("set",)) for k in range(3)),
        CatalogItem(id="kettle", title="Steel kettle", description="Whistling kettle, 2 litres", price=None),
    ]
    orders = []
    for c in range(30):
        k = c % 3
        orders.append(Order(customer=f"c{c}", when=c * DAY, items=(f"mug{k}",)))
        orders.append(Order(customer=f"c{c}", when=c * DAY + 60, items=(f"saucer{k}", "kettle")))
    return Recommender.build(items, orders=orders, config=EngineConfig(tune_min_cases=10))


def answers(engine: Recommender) -> list[list[tuple[str, float, str]]]:
    out = []
    for item in engine.items:
        for placement, session in (("product", ()), ("product", ("kettle",)), ("cart", ("mug0",)), ("home", ())):
            found = engine.recommend(query_id=item.id, placement=placement, session_ids=session, limit=5)
            out.append([(r.id, r.score, str(r.reason)) for r in found])
    return out


# ---------------------------------------------------------------- the file


def test_a_saved_engine_loads_back_and_answers_exactly_as_the_one_that_was_built(tmp_path):
    # given
    engine = small_store_engine()
    path = tmp_path / "engines" / "store-1.npz"

    # when
    save_engine(engine, path, owner="store 1")
    loaded = load_engine(path, owner="store 1")

    # then
    assert engine.tuning is not None and loaded.tuning is not None
    assert loaded.tuning.as_dict() == engine.tuning.as_dict()
    assert loaded.config == engine.config
    assert loaded.items == engine.items
    assert answers(loaded) == answers(engine)
    assert loaded.precompute(limit=5) == engine.precompute(limit=5)
    assert [p.name for p in path.parent.iterdir()] == ["store-1.npz"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("owner", "built for 'store 1', not 'store 2'"),
        ("garbage", "store-1.npz"),
        ("format", f"not a snapshot of format {FORMAT}"),
        ("pickled", "Object arrays cannot be loaded when allow_pickle=False"),
        ("truncated", "store-1.npz"),
    ],
)
def test_a_file_that_is_not_this_versions_snapshot_for_this_owner_is_refused(tmp_path, damage, message):
    # given
    path = tmp_path / "store-1.npz"
    save_engine(small_store_engine(), path, owner="store 1")
    owner = "store 1"
    if damage == "owner":
        owner = "store 2"
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "format":
        with np.load(path) as archive:
            arrays = dict(archive)
        arrays["meta"] = np.frombuffer(b'{"format": 0, "owner": "store 1"}', dtype=np.uint8)
        np.savez(path, **arrays)
    elif damage == "pickled":
        with np.load(path) as archive:
            arrays = dict(archive)
        arrays["hub"] = np.array([object()] * 7, dtype=object)
        np.savez(path, **arrays)
    else:
        path.write_bytes(path.read_bytes()[:2000])

    # when / then
    with pytest.raises(SnapshotError, match=message):
        load_engine(path, owner=owner)


# ---------------------------------------------------------------- the store's saved engine


@pytest.fixture
def saved_engines(settings, tmp_path) -> Path:
    settings.RECS_ENGINE_SNAPSHOT_DIR = tmp_path / "engines"
    settings.RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS = 3600
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 5000
    return tmp_path / "engines"


@pytest.mark.django_db
def test_a_rebuild_saves_the_engine_and_web_processes_load_it_instead_of_building(saved_engines):
    # given: a rebuild in the worker; then a product added that no rebuild has seen yet
    store = StoreFactory.create()
    make_catalog(store)
    order(store, "o1", "p0", "p3")
    rebuild_store_lists(store=store, list_size=5)
    ProductFactory.create(store=store, external_id="p-new", title="red wool scarf", price=Decimal("9.00"))

    # when
    engine = warm_live_engine(store_id=store.id)

    # then: the saved engine was loaded (it has no p-new), with the rebuild's answers
    assert engine_snapshot_path(store_id=store.id).is_file()
    assert engine is not None
    assert "p-new" not in engine and len(engine) == 8
    assert [r.id for r in engine.recommend(query_id="p0", placement="product", limit=1)] == ["p3"]


@pytest.mark.django_db
def test_a_stale_or_another_stores_saved_engine_is_rebuilt_and_saved_again(saved_engines):
    # given: a saved engine for the store, then a new product
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store, list_size=5)
    ProductFactory.create(store=store, external_id="p-new", title="red wool scarf", price=Decimal("9.00"))
    path = engine_snapshot_path(store_id=store.id)

    # when: the file is older than RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    engine = warm_live_engine(store_id=store.id)

    # then: built from the database (p-new is in it) and saved for the others
    assert engine is not None and "p-new" in engine
    assert path.stat().st_mtime > two_hours_ago + 3600

    # when: the file is fresh but was written for another store under the same id (a reused id)
    Store.objects.filter(id=store.id).update(created_at=store.created_at.replace(year=2020))
    ProductFactory.create(store=store, external_id="p-newer", title="blue wool scarf", price=Decimal("9.00"))
    engine = warm_live_engine(store_id=store.id)

    # then: refused, rebuilt
    assert engine is not None and "p-newer" in engine


@pytest.mark.django_db
def test_a_web_process_that_builds_saves_the_engine_for_the_others(saved_engines):
    # given: no rebuild has run yet
    store = StoreFactory.create()
    make_catalog(store)

    # when
    built = warm_live_engine(store_id=store.id)

    # then
    assert built is not None
    loaded = load_engine(
        engine_snapshot_path(store_id=store.id), owner=f"store {store.id} created {store.created_at.isoformat()}"
    )
    assert answers(loaded) == answers(built)


@pytest.mark.django_db
def test_nothing_is_saved_when_saved_engines_are_off(settings, tmp_path):
    # given
    settings.RECS_ENGINE_SNAPSHOT_DIR = tmp_path / "engines"
    settings.RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS = 0
    store = StoreFactory.create()
    make_catalog(store)

    # when
    rebuild_store_lists(store=store, list_size=5)
    warm_live_engine(store_id=store.id)

    # then
    assert not (tmp_path / "engines").exists()


@pytest.mark.django_db
def test_pruning_deletes_stale_engines_and_those_of_deleted_stores_and_keeps_the_rest(saved_engines):
    # given: three stores with saved engines; one goes (shop/redact), one's engine is two hours old
    kept, gone, old = (StoreFactory.create() for _ in range(3))
    for store in (kept, gone, old):
        make_catalog(store)
        rebuild_store_lists(store=store, list_size=3)
    gone_id = gone.id
    gone.delete()
    two_hours_ago = time.time() - 7200
    os.utime(engine_snapshot_path(store_id=old.id), (two_hours_ago, two_hours_ago))
    (saved_engines / "notes.txt").write_text("not an engine")

    # when
    deleted = prune_saved_engines()

    # then
    assert deleted == 2
    assert sorted(p.name for p in saved_engines.iterdir()) == sorted([f"store-{kept.id}.npz", "notes.txt"])
    assert not engine_snapshot_path(store_id=gone_id).exists()


def test_the_saved_items_keep_every_field(tmp_path):
    # given: an item with every field set, tags included
    item = CatalogItem(
        id="x1",
        sku="SKU-1",
        title="Title",
        vendor="Vendor",
        product_type="Type",
        category_path="A > B",
        tags=("t1", "t2"),
        description="Words",
        price=12.5,
        in_stock=False,
        is_published=False,
        group_id="g1",
    )
    engine = Recommender.build([item, dataclasses.replace(item, id="x2", group_id="")])

    # when
    save_engine(engine, tmp_path / "e.npz")

    # then
    assert load_engine(tmp_path / "e.npz").items == engine.items


@pytest.mark.django_db
def test_no_engine_is_saved_for_a_store_the_live_engine_does_not_serve(saved_engines, settings):
    # given: a saved engine, then the store grows above RECS_LIVE_ENGINE_MAX_PRODUCTS
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store, list_size=3)
    assert engine_snapshot_path(store_id=store.id).is_file()
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 7

    # when
    rebuild_store_lists(store=store, list_size=3)

    # then: its answers come from the stored lists; nothing is kept for a web process
    assert not engine_snapshot_path(store_id=store.id).exists()


@pytest.mark.django_db
def test_a_folder_that_cannot_be_written_costs_the_saved_engine_only(saved_engines, settings, tmp_path, caplog):
    # given: the snapshot folder lies under a regular file
    (tmp_path / "a-file").write_text("")
    settings.RECS_ENGINE_SNAPSHOT_DIR = tmp_path / "a-file" / "engines"
    store = StoreFactory.create()
    make_catalog(store)

    # when
    result = rebuild_store_lists(store=store, list_size=3)
    engine = warm_live_engine(store_id=store.id)

    # then: the lists are written and the web process builds its own engine; the failure is logged
    assert result.product_lists == 8
    assert engine is not None and len(engine) == 8
    assert "recommendations.engine_snapshot_unwritable" in caplog.text
