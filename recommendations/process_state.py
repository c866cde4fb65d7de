"""Everything the widget path keeps in a web process between requests, in one place.

- `serving_stores`: each site key's serving config (or None for an unknown key), RECS_STORE_CACHE_SECONDS.
- `answers`: rendered non-personalised widget answers by their raw query parameters, RECS_ANSWER_CACHE_SECONDS
  (also shared with the other web processes through recommendations.shared_answers when that is on).
- `running_experiments`: each store's running experiment (or None), and `widget_settings`: each (store, placement)'s
  settings, RECS_STORE_CACHE_SECONDS (recommendations.experiments reads them).
- the live engines: one in-memory recommender per store for personalised answers, loaded from the engine the last
  rebuild saved (engine/loader.py) or built in a background thread, and kept RECS_LIVE_ENGINE_TTL_SECONDS.

Selectors and views read through this module; nothing else keeps per-process state (but the fast path's headers,
learnt once from the middlewares, and the shared answers' Redis client). `clear_process_caches()` forgets all of it,
and the shared answers (tests call it before each test); `forget_store()` one store's part (a settings change).
"""

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

from catalog_sync.models import Product
from merchants.models import Store
from recommendations.engine import Recommender
from recommendations.engine.loader import build_recommender_for_store, load_saved_store_engine, save_store_engine
from recommendations.shared_answers import get_shared_answers

if TYPE_CHECKING:
    from recommendations.experiments import RunningExperiment, WidgetSettings
    from recommendations.selectors.stores import ServingStore
    from recommendations.views.widget import AnswerKey, RenderedAnswer

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A bounded dict whose entries expire: when full, the expired entries go first, then everything."""

    def __init__(self, *, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The key's value while it is fresh, else None."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def peek(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while the key is fresh (a kept None too), else (False, None); never loads."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def put(self, key: K, value: V, *, ttl: float) -> None:
        """Keep value for ttl seconds (junk keys cannot grow the cache past max_entries)."""
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            for stale in [k for k, (expires, _) in list(self._entries.items()) if expires <= now]:
                self._entries.pop(stale, None)
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (now + ttl, value)

    def get_or_load(self, key: K, *, ttl: float, load: Callable[[], V]) -> V:
        """The key's fresh value, or load()'s, kept for ttl seconds (a None from load is kept too)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = load()
        self.put(key, value, ttl=ttl)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def discard_where(self, matches: Callable[[K], bool]) -> int:
        """Forget the entries whose key matches; returns how many were forgotten."""
        keys = [key for key in list(self._entries) if matches(key)]
        for key in keys:
            self._entries.pop(key, None)
        return len(keys)


serving_stores: "ExpiringCache[str, ServingStore | None]" = ExpiringCache(max_entries=10_000)
# Keyed by the raw (site_key, sku, placement, limit) and the experiment arm served ("" outside an experiment).
answers: "ExpiringCache[AnswerKey, RenderedAnswer]" = ExpiringCache(max_entries=20_000)
running_experiments: "ExpiringCache[int, RunningExperiment | None]" = ExpiringCache(max_entries=10_000)
widget_settings: "ExpiringCache[tuple[int, str], WidgetSettings]" = ExpiringCache(max_entries=30_000)

_live_lock = threading.Lock()
_live_engines: dict[int, tuple[float, Recommender | None]] = {}
_live_building: set[int] = set()


def clear_process_caches() -> None:
    """Forget every store config, answer and live engine this process holds, and the answers shared with others."""
    serving_stores.clear()
    answers.clear()
    shared = get_shared_answers()
    if shared is not None:
        shared.clear()
    running_experiments.clear()
    widget_settings.clear()
    _live_engines.clear()


def forget_store(*, store_id: int, site_key: str) -> None:
    """Forget one store's serving config, answers, experiment and placement settings held by this process.

    A settings change calls it so this process serves the change at once; other processes follow within
    RECS_STORE_CACHE_SECONDS (answers: RECS_ANSWER_CACHE_SECONDS).
    """
    serving_stores.discard_where(lambda key: key == site_key)
    answers.discard_where(lambda key: key[0] == site_key)
    running_experiments.discard_where(lambda key: key == store_id)
    widget_settings.discard_where(lambda key: key[0] == store_id)
    shared = get_shared_answers()
    if shared is not None:
        shared.forget_site(site_key)


def get_live_engine(*, store_id: int) -> Recommender | None:
    """Return this process's engine for the store if one is built; never builds in the caller's thread.

    A missing or expired engine is built in a background thread (one at a time per process) for stores up to
    RECS_LIVE_ENGINE_MAX_PRODUCTS products; meanwhile the caller falls back to stored lists (or the old engine).
    """
    entry = _live_engines.get(store_id)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    if int(settings.RECS_LIVE_ENGINE_MAX_PRODUCTS) > 0:
        _start_live_build(store_id)
    return entry[1] if entry is not None else None


def warm_live_engine(*, store_id: int) -> Recommender | None:
    """Load the store's saved engine, or build it now in this thread and save it for the other processes (None when
    the store is too big or gone)."""
    store = Store.objects.filter(id=store_id).first()
    engine: Recommender | None = None
    maximum = int(settings.RECS_LIVE_ENGINE_MAX_PRODUCTS)
    if store is not None and (maximum <= 0 or Product.objects.filter(store=store).count() <= maximum):
        engine = load_saved_store_engine(store=store)
        if engine is None:
            engine = build_recommender_for_store(store=store)
            save_store_engine(store=store, engine=engine)
    _live_engines[store_id] = (time.monotonic() + int(settings.RECS_LIVE_ENGINE_TTL_SECONDS), engine)
    return engine


def _start_live_build(store_id: int) -> None:
    with _live_lock:
        if _live_building:
            return
        _live_building.add(store_id)

    def build() -> None:
        try:
            close_old_connections()
            warm_live_engine(store_id=store_id)
        except Exception:
            logger.exception("recommendations.live_engine_failed", extra={"store_id": store_id})
        finally:
            connection.close()
            with _live_lock:
                _live_building.discard(store_id)

    threading.Thread(target=build, name=f"live-engine-{store_id}", daemon=True).start()
