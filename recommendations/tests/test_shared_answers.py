"""Answers shared by the web processes through Redis: rendered once, never served past their time, Redis optional."""

import socket
import time
from typing import Any

import pytest
import redis
from django.core.cache import cache

from catalog_sync.models import Product
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations import process_state
from recommendations.fast_path import WidgetFastPath
from recommendations.shared_answers import KEY_PREFIX, get_shared_answers
from recommendations.tests.test_fast_path import CountingApp, call, q
from recommendations.tests.test_serving import make_product, make_store, store_list

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _shared(settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    settings.RECS_SHARED_ANSWERS_URL = settings.REDIS_URL
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    settings.RECS_ANSWER_CACHE_SECONDS = 10
    settings.WIDGET_RATE_LIMIT = "off"
    cache.clear()
    process_state.clear_process_caches()


@pytest.fixture
def shop() -> Store:
    store = make_store()
    products = [make_product(store, n) for n in range(6)]
    store_list(store, products[0], ["p1", "p2", "p3"])
    return store


def shared_keys(settings: Any) -> list[bytes]:
    return list(redis.Redis.from_url(settings.REDIS_URL).scan_iter(match=KEY_PREFIX + "*"))


def other_process() -> None:
    """What another web process starts with: its own caches empty, the shared answers there."""
    process_state.answers.clear()


def test_an_answer_rendered_by_one_process_is_sent_by_another_byte_for_byte(shop: Store, settings: Any) -> None:
    # given: one process renders the answer; p1 sells out afterwards
    first = call(WidgetFastPath(CountingApp()), q(sku="SKU-0"))
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)

    # when: another process is asked, once, then again
    other_process()
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)
    second = call(fast_path, q(sku="SKU-0"))
    third = call(fast_path, q(sku="SKU-0"), headers={"If-None-Match": dict(first[1])["ETag"]})

    # then: neither rendered it (nor reached Django), and the bytes are the first process's
    assert inner.calls == 0
    assert second == first
    assert third[0] == "304 Not Modified"
    assert len(shared_keys(settings)) == 1


def test_a_shared_answer_is_never_served_past_its_time_in_any_process(
    shop: Store, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an answer rendered at t, read by another process at t + 6 s
    call(WidgetFastPath(CountingApp()), q(sku="SKU-0"))
    now = (time.monotonic(), time.time())  # just after t
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)
    other_process()
    monkeypatch.setattr(time, "monotonic", lambda: now[0] + 6)
    monkeypatch.setattr(time, "time", lambda: now[1] + 6)
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)
    at_six = call(fast_path, q(sku="SKU-0"))

    # when: at t + 10.01 s the other process is asked again (its own copy was kept for the 4 s left only)
    monkeypatch.setattr(time, "monotonic", lambda: now[0] + 10.01)
    monkeypatch.setattr(time, "time", lambda: now[1] + 10.01)
    at_ten = call(fast_path, q(sku="SKU-0"))
    monkeypatch.undo()

    # then: at t + 6 s the shared answer (p1 in it), at t + 10.01 s a new one
    assert b'"sku":"SKU-1"' in at_six[2]
    assert b'"sku":"SKU-1"' not in at_ten[2]
    assert inner.calls == 0  # both sent from here


def test_personalised_answers_and_errors_are_not_shared(shop: Store, settings: Any) -> None:
    fast_path = WidgetFastPath(CountingApp())

    viewed = call(fast_path, q(sku="SKU-0", viewed="SKU-1"))
    bad = call(fast_path, q(sku="SKU-0", limit="0"))
    unknown = call(fast_path, "site_key=sk_nope&sku=SKU-0")

    assert (viewed[0], bad[0], unknown[0]) == ("200 OK", "400 Bad Request", "404 Not Found")
    assert shared_keys(settings) == []


def test_without_redis_answers_are_rendered_and_served_as_without_the_shared_cache(shop: Store, settings: Any) -> None:
    # given: a Redis address where nothing listens
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.RECS_SHARED_ANSWERS_URL = f"redis://127.0.0.1:{port}/0"
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when: asked twice, then p1 sells out and another process is asked
    answers = [call(fast_path, q(sku="SKU-0")) for _ in range(2)]
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)
    other_process()
    again = call(fast_path, q(sku="SKU-0"))

    # then: rendered and kept in the process; rendered anew by the other process
    assert [a[0] for a in answers] == ["200 OK", "200 OK"]
    assert answers[0] == answers[1]
    assert b'"sku":"SKU-1"' in answers[0][2] and b'"sku":"SKU-1"' not in again[2]
    assert inner.calls == 0
    shared = get_shared_answers()
    assert shared is not None and shared.get(("sk_test", "SKU-0", "", "", "")) is None


def test_a_settings_change_forgets_the_stores_shared_answers_and_only_its(shop: Store, settings: Any) -> None:
    # given: shared answers of this store and of another
    other = StoreFactory.create(domain="other.example.com", site_key="sk_other")
    store_list(other, make_product(other, 0), [make_product(other, n).external_id for n in (1, 2)])
    first = call(WidgetFastPath(CountingApp()), q(sku="SKU-0"))
    call(WidgetFastPath(CountingApp()), q(sku="SKU-0", site_key="sk_other"))
    kept = set(shared_keys(settings))
    assert len(kept) == 2

    # when: this store's settings change (what the settings service calls after saving); p1 sold out meanwhile
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)
    process_state.forget_store(store_id=shop.id, site_key=shop.site_key)

    # then: only the other store's shared answer is left, and another process renders this store's anew
    (left,) = shared_keys(settings)
    assert left in kept
    other_process()
    again = call(WidgetFastPath(CountingApp()), q(sku="SKU-0"))
    assert b"SKU-1" in first[2] and b"SKU-1" not in again[2]
