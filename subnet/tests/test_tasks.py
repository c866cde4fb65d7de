"""Asking the network: the per-product task against the reference validator over loopback, and the beat task."""

import socket
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core.cache import cache
from django.utils import timezone

from catalog_sync.models import OrderLine, Product
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, RecommendationList
from recommendations.services import rebuild_store_lists, store_network_list
from subnet.client import ValidatorClient
from subnet.models import NetworkRequest
from subnet.services import ask_network_for_product, pick_products_to_ask
from subnet.tests.conftest import API_KEY, RFC_PRIVATE_KEY_HEX, StubReply, rec_success

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.protocol import BitrecsRequest
from subnet.registry import ValidatorEndpoint, is_healthy
from subnet.tasks import MAX_ASK_RETRIES, ask_network_for_product_task, ask_network_task, prune_network_requests_task
from subnet.validator.miners import MinerAnswer, offline_pool

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"
PONG = StubReply(body={"detail": "pong", "st": 1_750_000_000})
CATALOG = [
    ("TEE-BLUE", "Blue Cotton Tee", "19.00"),
    ("TEE-RED", "Red Cotton Tee", "19.00"),
    ("TEE-GREEN", "Green Cotton Tee", "21.00"),
    ("HOODIE", "Cotton Hoodie", "45.00"),
    ("JEANS", "Blue Denim Jeans", "60.00"),
    ("CAP", "Blue Baseball Cap", "15.00"),
    ("HOSE", "Garden Hose", "25.00"),
    ("MUG", "Coffee Mug", "9.00"),
    ("LAMP", "Desk Lamp", "30.00"),
]


@pytest.fixture(autouse=True)
def _gateway(settings: Any) -> Iterator[None]:
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX  # the key the reference validator trusts
    settings.BITRECS_NETWORK = "test"
    settings.BITRECS_API_KEY = API_KEY
    settings.BITRECS_ASK_NUM_RESULTS = 3
    settings.BITRECS_ASK_BATCH = 20
    settings.BITRECS_ASK_COOLDOWN_MINUTES = 60
    settings.RECS_NETWORK_MAX_AGE_SECONDS = 24 * 3600
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0  # no background engine builds inside tests
    settings.RECS_ANSWER_CACHE_SECONDS = 0
    _clear_serving_state()
    yield
    _clear_serving_state()


def _clear_serving_state() -> None:
    cache.clear()  # the rate-limit counters; the root conftest clears the process caches


def make_shop(site_key: str = "shop-ask", **fields: Any) -> Store:
    store = StoreFactory.create(site_key=site_key, **fields)
    for index, (sku, title, price) in enumerate(CATALOG):
        ProductFactory(store=store, external_id=f"{site_key}-{index}", sku=sku, title=title, price=Decimal(price))
    return store


def product(store: Store, sku: str) -> Product:
    return Product.objects.get(store=store, sku=sku)


def widget_skus(response: Any) -> list[str]:
    return [item["sku"] for item in response.json()["items"]]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class QuerySkuMinerPool:
    """A miner that recommends the query product itself (first), then the offline miner's picks."""

    def __init__(self) -> None:
        self.inner = offline_pool(count=1)

    def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
        answers = self.inner.query(request)
        first = answers[0]
        query_item = f'{{"sku":"{request.query}","name":"Itself","price":"1","reason":"same"}}'
        return [
            MinerAnswer(
                uid=first.uid,
                hotkey=first.hotkey,
                query=first.query,
                created_at=first.created_at,
                results=(query_item, *first.results[1:]),
                models_used=first.models_used,
            )
        ]


# ----------------------------------------------------------------------------------------- answered


def test_a_product_without_a_network_list_is_asked_and_its_answer_served(client, settings, start_validator):
    # given: a store with local lists only, and the reference validator with two offline miners
    store = make_shop()
    rebuild_store_lists(store=store)
    validator = start_validator()
    settings.BITRECS_VALIDATOR_URL = validator.url
    query = product(store, "TEE-BLUE")

    # when
    ask_network_for_product_task.delay(store.id, query.id)

    # then: the attempt is recorded as answered, with the miner, its models and the latency
    record = NetworkRequest.objects.get()
    assert record.latency_ms is not None and record.latency_ms > 0
    assert record.miner_hotkey.startswith("5")
    assert (
        record.store_id,
        record.product_id,
        record.query_id,
        record.validator,
        record.status,
        record.error_code,
        record.error_message,
        record.retryable,
        record.miner_uid,
        record.models_used,
    ) == (
        store.id,
        query.id,
        "shop-ask-0",
        validator.url,
        "answered",
        "",
        "",
        False,
        "1",
        ["bitrecs/offline-text-similarity"],
    )
    # and the answer is the product's network list
    stored = RecommendationList.objects.get(store=store, source="network")
    assert (stored.product_id, stored.placement, stored.item_ids) == (
        query.id,
        "product",
        ["shop-ask-1", "shop-ask-2", "shop-ask-4"],
    )
    assert (stored.miner_hotkey, stored.validator, stored.models_used, stored.latency_ms) == (
        record.miner_hotkey,
        validator.url,
        ["bitrecs/offline-text-similarity"],
        record.latency_ms,
    )
    assert NetworkAnswer.objects.filter(store=store, rec_id=stored.rec_id).count() == 1
    # and the widget now answers from the network
    response = client.get(URL, {"site_key": "shop-ask", "sku": "TEE-BLUE", "limit": "3"})
    assert response.status_code == 200
    assert (response.json()["source"], response.json()["rec_id"]) == ("network", stored.rec_id)
    assert widget_skus(response) == ["TEE-RED", "TEE-GREEN", "JEANS"]


# ----------------------------------------------------------------------------------------- rejected


@pytest.mark.parametrize(
    ("skus", "code", "message"),
    [
        (["TEE-RED", "TEE-BLUE", "JEANS"], "query_sku", "result 2 is the query SKU 'TEE-BLUE'"),
        (
            ["TEE-RED", "NOT-OURS", "JEANS"],
            "unknown_sku",
            "result 2 has SKU 'NOT-OURS', which is not in the store's catalog",
        ),
        (["TEE-RED", "JEANS"], "wrong_count", "expected 3 results, got 2"),
        (["TEE-RED", "tee-red", "JEANS"], "duplicate_sku", "result 2 repeats SKU 'tee-red'"),
    ],
)
def test_an_invalid_list_is_recorded_as_rejected_and_never_served(client, settings, stub_server, skus, code, message):
    # given: a validator (scripted: the reference one never passes such a list on) answering an invalid list
    store = make_shop()
    rebuild_store_lists(store=store)
    local = RecommendationList.objects.get(store=store, source="local", placement="product", query_id="shop-ask-0")
    stub_server.replies = [PONG, StubReply(body=rec_success(skus, query="TEE-BLUE"))]
    settings.BITRECS_VALIDATOR_URL = stub_server.url

    # when
    ask_network_for_product_task.delay(store.id, product(store, "TEE-BLUE").id)

    # then: recorded as rejected, nothing stored, no retry
    record = NetworkRequest.objects.get()
    assert (record.status, record.error_code, record.error_message, record.retryable) == (
        "rejected",
        code,
        message,
        False,
    )
    assert [(request.method, request.path) for request in stub_server.received] == [("GET", "/ping"), ("POST", "/rec")]
    assert RecommendationList.objects.filter(source="network").count() == 0
    assert NetworkAnswer.objects.count() == 0
    # and the widget still serves the local list
    response = client.get(URL, {"site_key": "shop-ask", "sku": "TEE-BLUE"})
    assert (response.json()["source"], response.json()["rec_id"]) == ("local", local.rec_id)


def test_a_miner_recommending_the_query_is_refused_by_the_reference_validator(settings, start_validator):
    # given: the reference validator whose only miner puts the query product in its list
    store = make_shop()
    validator = start_validator(miner_pool=QuerySkuMinerPool())
    settings.BITRECS_VALIDATOR_URL = validator.url

    # when
    record = ask_network_for_product(
        client=ValidatorClient(validator.url, API_KEY, network="test"),
        store=store,
        product=product(store, "TEE-BLUE"),
        num_results=3,
    )

    # then: the validator answers 500 "error" (no usable miner answer): a failure, nothing stored
    assert (record.status, record.error_code, record.retryable, record.miner_hotkey) == (
        "failed",
        "ValidatorFailed",
        True,
        "",
    )
    assert RecommendationList.objects.filter(source="network").count() == 0


# ------------------------------------------------------------------------------------------- failed


def test_an_unreachable_validator_is_recorded_as_failed():
    # given
    store = make_shop()
    url = closed_port_url()

    # when
    record = ask_network_for_product(
        client=ValidatorClient(url, API_KEY, network="test"),
        store=store,
        product=product(store, "TEE-BLUE"),
        num_results=3,
    )

    # then
    assert NetworkRequest.objects.get() == record
    assert record.latency_ms is not None
    assert (
        record.status,
        record.error_code,
        record.error_message,
        record.retryable,
        record.validator,
        record.miner_hotkey,
        record.models_used,
    ) == ("failed", "ValidatorUnavailable", f"cannot reach {url}: ConnectionError", True, url, "", [])
    assert RecommendationList.objects.filter(source="network").count() == 0


def test_the_task_retries_a_validator_that_failed_after_its_ping_with_a_back_off(settings, stub_server):
    # given: a validator that answers /ping, then has no miner answer (500 "error": retry elsewhere)
    store = make_shop()
    stub_server.replies = [PONG, StubReply(status=500, body={"detail": "error", "status_code": 500})]
    settings.BITRECS_VALIDATOR_URL = stub_server.url

    # when
    with pytest.raises(Retry) as retry:
        ask_network_for_product_task.delay(store.id, product(store, "TEE-BLUE").id)

    # then: the attempt is recorded, the validator marked down, and the ask retried after the back-off
    assert retry.value.when == 30
    assert list(NetworkRequest.objects.values_list("status", "error_code", "retryable")) == [
        ("failed", "ValidatorFailed", True)
    ]
    assert not is_healthy(ValidatorEndpoint(url=stub_server.url))


def test_the_task_retries_a_rate_limited_ask_after_retry_after(settings, stub_server):
    # given: the validator asks us to wait longer than one call's budget
    store = make_shop()
    stub_server.replies = [
        PONG,
        StubReply(status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "400"}),
    ]
    settings.BITRECS_VALIDATOR_URL = stub_server.url

    # when
    with pytest.raises(Retry) as retry:
        ask_network_for_product_task.delay(store.id, product(store, "TEE-BLUE").id)

    # then
    assert retry.value.when == 400
    record = NetworkRequest.objects.get()
    assert (record.status, record.error_code, record.retry_after_seconds) == ("failed", "ValidatorRateLimited", 400.0)


def test_the_task_gives_up_after_its_last_retry(settings, stub_server):
    # given
    store = make_shop()
    stub_server.replies = [PONG, StubReply(status=500, body={"detail": "error", "status_code": 500})]
    settings.BITRECS_VALIDATOR_URL = stub_server.url

    # when: the last allowed retry fails too
    ask_network_for_product_task.apply(args=(store.id, product(store, "TEE-BLUE").id), retries=MAX_ASK_RETRIES)

    # then: recorded, not retried again
    assert list(NetworkRequest.objects.values_list("status", "error_code")) == [("failed", "ValidatorFailed")]


def test_an_unreachable_validator_is_not_asked(settings):
    # given
    store = make_shop()
    settings.BITRECS_VALIDATOR_URL = closed_port_url()

    # when
    ask_network_for_product_task.delay(store.id, product(store, "TEE-BLUE").id)

    # then: its /ping failed, so nothing was sent; the product stays due for a later run
    assert NetworkRequest.objects.count() == 0
    assert [p.sku for p in pick_products_to_ask(store=store, limit=1)] == ["LAMP"]


def test_the_task_does_not_retry_a_refused_api_key(settings, stub_server):
    # given: /ping passes, /rec refuses the key
    store = make_shop()
    stub_server.replies = [PONG, StubReply(status=401, body={"detail": "Unauthorized"})]
    settings.BITRECS_VALIDATOR_URL = stub_server.url

    # when
    ask_network_for_product_task.delay(store.id, product(store, "TEE-BLUE").id)

    # then
    assert list(NetworkRequest.objects.values_list("status", "error_code", "retryable")) == [
        ("failed", "ApiKeyRejected", False)
    ]


def test_the_task_tolerates_a_deleted_product_or_store(settings):
    # given
    store = make_shop()
    gone = product(store, "MUG")
    gone_id = gone.id
    gone.delete()
    settings.BITRECS_VALIDATOR_URL = closed_port_url()

    # when
    ask_network_for_product_task.delay(store.id, gone_id)
    ask_network_for_product_task.delay(store.id + 1000, product(store, "TEE-BLUE").id)

    # then
    assert NetworkRequest.objects.count() == 0


# ------------------------------------------------------------------------------------- what is asked


def test_pick_products_to_ask_skips_fresh_lists_and_recently_asked_products(settings):
    # given
    store = make_shop()
    now = timezone.now()
    # ordered products come first (most ordered first); the rest newest first
    for line, sku in enumerate(["HOSE", "HOSE", "LAMP"]):
        OrderLine.objects.create(store=store, order_id=f"o{line}", line_id="1", product=product(store, sku))
    Product.objects.filter(store=store, sku="CAP").update(created_at=now + timedelta(minutes=1))
    # a fresh network list: skipped; a stale one: asked again
    for sku, age in (("TEE-BLUE", timedelta(hours=1)), ("TEE-RED", timedelta(hours=25))):
        stored = store_network_list(
            store=store,
            product=product(store, sku),
            placement="product",
            skus=["JEANS", "MUG"],
            miner_hotkey="5F",
            validator="http://v",
            models_used=[],
            latency_ms=1,
        )
        RecommendationList.objects.filter(id=stored.id).update(computed_at=now - age)
    # asked 10 minutes ago (whatever the outcome): skipped; asked 2 hours ago: asked again
    for sku, age in (("TEE-GREEN", timedelta(minutes=10)), ("JEANS", timedelta(hours=2))):
        NetworkRequest.objects.create(
            store=store,
            product=product(store, sku),
            query_id=sku,
            validator="http://v",
            status="failed",
            created_at=now - age,
        )
    # not offerable: skipped
    Product.objects.filter(store=store, sku="HOODIE").update(in_stock=False)
    Product.objects.filter(store=store, sku="MUG").update(is_published=False)
    Product.objects.filter(store=store, sku="LAMP").update(status=Product.Status.DRAFT)
    # another store's products: never
    make_shop(site_key="other")

    # when
    picked = pick_products_to_ask(store=store, limit=10)
    limited = pick_products_to_ask(store=store, limit=2)

    # then
    assert [p.sku for p in picked] == ["HOSE", "CAP", "JEANS", "TEE-RED"]
    assert [p.sku for p in limited] == ["HOSE", "CAP"]
    assert pick_products_to_ask(store=store, limit=0) == []


# --------------------------------------------------------------------------------------------- beat


def test_ask_network_asks_a_batch_of_each_active_store(settings, start_validator):
    # given: two active stores and an uninstalled one
    first, second = make_shop(site_key="first"), make_shop(site_key="second")
    make_shop(site_key="gone", status=Store.Status.UNINSTALLED)
    validator = start_validator()
    settings.BITRECS_VALIDATOR_URL = validator.url
    settings.BITRECS_ASK_BATCH = 2

    # when (eager: the per-product tasks run inline)
    queued = ask_network_task.delay().get()

    # then: the two newest products of each active store were asked and answered
    assert queued == 4
    assert sorted(NetworkRequest.objects.values_list("store__site_key", "query_id", "status")) == [
        ("first", "first-7", "answered"),
        ("first", "first-8", "answered"),
        ("second", "second-7", "answered"),
        ("second", "second-8", "answered"),
    ]
    assert RecommendationList.objects.filter(source="network", store__in=[first, second]).count() == 4

    # when asked again at once: nothing is due
    assert ask_network_task.delay().get() == 2 * 2  # the next two products of each store
    assert ask_network_task.delay().get() == 2 * 2
    assert NetworkRequest.objects.count() == 12


def test_ask_network_does_nothing_when_the_validator_is_unhealthy(settings):
    # given
    make_shop()
    settings.BITRECS_VALIDATOR_URL = closed_port_url()

    # when
    queued = ask_network_task.delay().get()

    # then
    assert queued == 0
    assert NetworkRequest.objects.count() == 0


def test_old_attempt_records_are_pruned(settings):
    # given: records 40 and 10 days old, kept for 30 days
    store = make_shop()
    settings.BITRECS_NETWORK_REQUEST_RETENTION_DAYS = 30
    for days in (40, 10):
        NetworkRequest.objects.create(
            store=store,
            query_id=f"q{days}",
            validator="http://v",
            status="failed",
            created_at=timezone.now() - timedelta(days=days),
        )

    # when
    deleted = prune_network_requests_task.delay().get()

    # then
    assert deleted == 1
    assert list(NetworkRequest.objects.values_list("query_id", flat=True)) == ["q10"]
