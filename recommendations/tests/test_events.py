"""POST /api/v1/events: accepted batches land in ShopperEvent exactly once; junk, size, rate and outages."""

import contextlib
import fcntl
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test import Client

from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, PlacementSettings, ShopperEvent
from recommendations.process_state import clear_process_caches
from recommendations.services import events as events_service
from recommendations.services.events import clear_event_spool, drain_event_spool, spooled_batches

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
TS = (int(time.time()) - 60) * 1000  # a minute ago, in milliseconds (Date.now())


@pytest.fixture(autouse=True)
def _clean_state(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.EVENTS_DRAIN_IN_PROCESS = False  # no drain thread: a Celery drain, run inline (tasks are eager)
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 0  # ... after every batch
    settings.EVENTS_SPOOL_DIR = str(tmp_path / "spool")
    settings.EVENTS_SPOOL_KEY = f"bitrecs:test-events:{tmp_path.name}"
    clear_process_caches()
    cache.clear()
    yield
    with contextlib.suppress(redis.RedisError, OSError):  # a test may point the spool at a closed port
        clear_event_spool()
    clear_process_caches()


@pytest.fixture(params=["redis", "journal"])
def spool(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run a test with the Redis spool (when REDIS_URL is set) and with the journal files."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("REDIS_URL is not set")
        settings.EVENTS_SPOOL_URL = settings.REDIS_URL
    else:
        settings.EVENTS_SPOOL_URL = ""
    return str(request.param)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(domain="shop.example.com", site_key="sk_events")


def event(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "type": "click", "ts": TS, "sku": f"SKU-{n}", **fields}


def post(client: Client, body: Any, *, content_type: str = "text/plain;charset=UTF-8", **extra: Any) -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, content_type=content_type, **extra)


def stored() -> list[tuple[Any, ...]]:
    return list(
        ShopperEvent.objects.order_by("event_id").values_list(
            "store__site_key",
            "event_id",
            "type",
            "sku",
            "rec_id",
            "source",
            "miner_hotkey",
            "placement",
            "arm",
            "session_id",
        )
    )


def test_a_beacon_batch_is_stored_with_its_fields(client: Client, store: Store, spool: str) -> None:
    batch = {
        "site_key": "sk_events",
        "events": [
            event(1, type="impression", rec_id="l_abc", placement="product", arm="local", session_id="sess-12345"),
            event(2, type="view", sku="SKU-9"),
        ],
    }

    response = post(client, batch)

    assert response.status_code == 204
    assert response.content == b""
    assert stored() == [
        ("sk_events", "e1", "impression", "SKU-1", "l_abc", "local", "", "product", "local", "sess-12345"),
        ("sk_events", "e2", "view", "SKU-9", "", "", "", "", "", ""),
    ]
    row = ShopperEvent.objects.get(event_id="e1")
    assert row.occurred_at == datetime.fromtimestamp(TS / 1000, tz=UTC)
    assert spooled_batches() == 0


def test_application_json_and_iso_times_are_accepted(client: Client, store: Store) -> None:
    moment = datetime.fromtimestamp(TS / 1000, tz=UTC)
    batch = {"site_key": "sk_events", "events": [event(1, ts=moment.isoformat().replace("+00:00", "Z"))]}

    response = post(client, batch, content_type="application/json")

    assert response.status_code == 204
    assert ShopperEvent.objects.get().occurred_at == moment


def test_a_batch_sent_twice_is_stored_once(client: Client, store: Store, spool: str) -> None:
    batch = {"site_key": "sk_events", "events": [event(1), event(2), event(1, sku="OTHER")]}

    assert post(client, batch).status_code == 204
    assert post(client, batch).status_code == 204

    assert [(r[1], r[3]) for r in stored()] == [("e1", "SKU-1"), ("e2", "SKU-2")]


def test_the_same_event_id_in_two_stores_is_two_events(client: Client, store: Store) -> None:
    StoreFactory.create(site_key="sk_other")

    post(client, {"site_key": "sk_events", "events": [event(1)]})
    post(client, {"site_key": "sk_other", "events": [event(1)]})

    assert sorted(r[0] for r in stored()) == ["sk_events", "sk_other"]


def test_a_network_rec_id_names_its_miner(client: Client, store: Store) -> None:
    NetworkAnswer.objects.create(store=store, placement="product", rec_id="n_0abc", miner_hotkey="5Miner")
    other = StoreFactory.create(site_key="sk_other")
    NetworkAnswer.objects.create(store=other, placement="product", rec_id="n_0def", miner_hotkey="5Else")

    post(client, {"site_key": "sk_events", "events": [event(1, rec_id="n_0abc"), event(2, rec_id="n_0def")]})

    assert [(r[4], r[5], r[6]) for r in stored()] == [("n_0abc", "network", "5Miner"), ("n_0def", "network", "")]


def test_anonymous_events_are_dropped_where_the_store_turned_them_off(client: Client, store: Store) -> None:
    PlacementSettings.objects.create(store=store, placement="product", anonymous_events=False)
    batch = {
        "site_key": "sk_events",
        "events": [
            event(1, placement="product"),
            event(2, placement="product", session_id="sess-12345"),
            event(3, placement="cart"),
        ],
    }

    assert post(client, batch).status_code == 204

    assert [r[1] for r in stored()] == ["e2", "e3"]


def test_an_unknown_site_key_is_404(client: Client, store: Store) -> None:
    response = post(client, {"site_key": "sk_nobody", "events": [event(1)]})

    assert response.status_code == 404
    assert response.json()["error"] == "store_not_found"
    assert ShopperEvent.objects.count() == 0


def test_an_uninstalled_store_is_404(client: Client) -> None:
    StoreFactory.create(site_key="sk_gone", status=Store.Status.UNINSTALLED)

    assert post(client, {"site_key": "sk_gone", "events": [event(1)]}).status_code == 404


def test_a_body_over_64_kib_is_413_before_it_is_read(client: Client, store: Store) -> None:
    padding = "x" * 200
    batch = {"site_key": "sk_events", "events": [event(n, sku=f"{n}-{padding}"[:255]) for n in range(50)]}
    batch["pad"] = "y" * 60_000

    response = post(client, batch)

    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "detail": f"A batch is at most 65536 bytes ({len(json.dumps(batch))} sent); send fewer events.",
    }


def test_51_events_are_refused(client: Client, store: Store) -> None:
    response = post(client, {"site_key": "sk_events", "events": [event(n) for n in range(51)]})

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "detail": "events: a list of 1 to 50 events is required."}


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "The body is not valid JSON"),
        (b"\xff\xfe{}", "The body is not UTF-8 text"),
        (b"[1, 2]", "The body must be a JSON object"),
        (b'{"site_key": "sk_events", "events": ' + DEEP[:60_000].encode() + b"}", "nests deeper than 64 levels"),
        (b'{"site_key": "sk_events", "events": []}', "events: a list of 1 to 50"),
        (b'{"site_key": "sk_events", "events": {"a": 1}}', "events: a list of 1 to 50"),
        (b'{"site_key": 5, "events": [1]}', "site_key:"),
        (b'{"site_key": "sk_events", "events": [1]}', "events[0]: each event must be a JSON object."),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "buy", "ts": 1, "sku": "a"}]}',
            "events[0].type: must be one of view, impression, click, add_to_cart, purchase.",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": ["e1"], "type": "view", "ts": 1, "sku": "a"}]}',
            "events[0].event_id:",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": "' + b"s" * 256 + b'"}]}',
            "events[0].sku:",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": {"a": [1]}}]}',
            "events[0].sku:",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": NaN, "sku": "a"}]}',
            "NaN is not a number JSON allows",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": -Infinity, "sku": "a"}]}',
            "-Infinity is not a number JSON allows",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1e400, "sku": "a"}]}',
            "The number 1e400 is too large.",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1' + b"0" * 5000 + b", "
            b'"sku": "a"}]}',
            "The body is not valid JSON",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": true, "sku": "a"}]}',
            "events[0].ts: the time of the event",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000, "sku": "a"}]}',
            "events[0].ts: 1780000000 is not a time between 2000 and 2100 (send milliseconds).",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": "2026-05-28T20:26:40", '
            b'"sku": "a"}]}',
            "events[0].ts: an ISO 8601 time needs its offset",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": "a", "session_id": "short"}]}',
            "events[0].session_id:",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": "a", "placement": "footer"}]}',
            "events[0].placement: must be one of cart, home, product",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": "a", "arm": 3}]}',
            "events[0].arm: must be one of holdout, interleave, local, network",
        ),
        (
            b'{"site_key": "sk_events", "events": [{"event_id": "e1", "type": "view", "ts": 1780000000000, '
            b'"sku": "a", "rec_id": "n_' + b"a" * 40 + b'"}]}',
            "events[0].rec_id:",
        ),
    ],
)
def test_junk_is_400_with_a_message(client: Client, store: Store, body: bytes, detail: str) -> None:
    response = post(client, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert detail in answer["detail"]
    assert ShopperEvent.objects.count() == 0
    assert spooled_batches() == 0


def test_other_methods_and_content_types_are_refused(client: Client, store: Store) -> None:
    batch = {"site_key": "sk_events", "events": [event(1)]}

    assert client.get(URL).status_code == 405
    form = client.post(URL, data=batch)  # multipart form
    assert form.status_code == 415
    assert form.json()["error"] == "unsupported_media_type"


def test_a_preflight_is_answered_for_any_origin(client: Client) -> None:
    response = client.options(
        URL, headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"}
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == "Content-Type"


def test_rate_limited_batches_are_429_with_retry_after(client: Client, store: Store, settings: Any) -> None:
    settings.WIDGET_RATE_LIMIT = "2/min"

    answers = [post(client, {"site_key": "sk_events", "events": [event(n)]}) for n in range(3)]

    assert [a.status_code for a in answers] == [204, 204, 429]
    assert answers[2].json()["error"] == "throttled"
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert ShopperEvent.objects.count() == 2


def test_the_site_limit_counts_a_store_s_batches_from_every_client(client: Client, store: Store, settings: Any) -> None:
    settings.WIDGET_RATE_LIMIT = "100/min"
    settings.WIDGET_SITE_RATE_LIMIT = "1/min"

    first = post(client, {"site_key": "sk_events", "events": [event(1)]}, REMOTE_ADDR="10.0.0.1")
    second = post(client, {"site_key": "sk_events", "events": [event(2)]}, REMOTE_ADDR="10.0.0.2")

    assert (first.status_code, second.status_code) == (204, 429)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_spool_outage_writes_the_batch_directly(client: Client, store: Store, settings: Any) -> None:
    settings.EVENTS_SPOOL_URL = f"redis://127.0.0.1:{_closed_port()}/0"

    response = post(client, {"site_key": "sk_events", "events": [event(1)]})

    assert response.status_code == 204
    assert [r[1] for r in stored()] == ["e1"]


def test_a_journal_that_cannot_be_written_falls_back_to_the_database(
    client: Client, store: Store, settings: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.EVENTS_SPOOL_URL = ""
    settings.EVENTS_SPOOL_DIR = str(blocker / "spool")

    assert post(client, {"site_key": "sk_events", "events": [event(1)]}).status_code == 204
    assert [r[1] for r in stored()] == ["e1"]


class _Outage:
    """Makes the default connection unusable (a closed port, or an SQLite file that cannot exist) and back."""

    def __init__(self) -> None:
        self.saved = dict(connection.settings_dict)

    def start(self) -> None:
        connection.close()
        if connection.vendor == "postgresql":
            connection.settings_dict["PORT"] = str(_closed_port())
        else:
            connection.settings_dict["NAME"] = "/nonexistent/bitrecs/db.sqlite3"

    def end(self) -> None:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(self.saved)


@pytest.fixture
def outage() -> Iterator[_Outage]:
    handle = _Outage()
    yield handle
    handle.end()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store_cached", [True, False], ids=["store-cached", "store-not-cached"])
def test_batches_accepted_while_the_database_is_down_are_written_when_it_is_back(
    client: Client, spool: str, outage: _Outage, store_cached: bool
) -> None:
    StoreFactory.create(domain="shop.example.com", site_key="sk_events")
    if store_cached:
        assert post(client, {"site_key": "sk_events", "events": [event(0)]}).status_code == 204  # warms the cache
    outage.start()

    during = [
        post(client, {"site_key": "sk_events", "events": [event(1), event(2, type="add_to_cart")]}),
        post(client, {"site_key": "sk_events", "events": [event(3, type="view")]}),
        post(client, {"site_key": "sk_nobody", "events": [event(4)]}),
    ]
    assert [r.status_code for r in during] == [204, 204, 204]  # an unknown key cannot be told apart yet
    assert spooled_batches() == 3
    assert drain_event_spool() == 0  # still down: nothing leaves the spool
    assert spooled_batches() == 3

    outage.end()
    written = drain_event_spool()

    assert written == 3  # the unknown site key's batch is dropped (logged)
    assert spooled_batches() == 0
    expected = [("e1", "click"), ("e2", "add_to_cart"), ("e3", "view")]
    assert [(r[1], r[2]) for r in stored()] == ([("e0", "click")] if store_cached else []) + expected
    assert {r[0] for r in stored()} == {"sk_events"}


@pytest.mark.django_db(transaction=True)
def test_an_outage_of_both_the_spool_and_the_database_is_503(client: Client, settings: Any, outage: _Outage) -> None:
    StoreFactory.create(site_key="sk_events")
    post(client, {"site_key": "sk_events", "events": [event(0)]})
    settings.EVENTS_SPOOL_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    outage.start()

    response = post(client, {"site_key": "sk_events", "events": [event(1)]})

    assert response.status_code == 503
    assert response.json()["error"] == "events_unavailable"


def test_a_redis_drain_while_another_runs_does_nothing(client: Client, store: Store, settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    settings.EVENTS_SPOOL_URL = settings.REDIS_URL
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 3600  # no drain after the post (one per hour per process)
    events_service._next_kick = 0.0
    lock = f"{settings.EVENTS_SPOOL_KEY}:lock"
    client_ = redis.Redis.from_url(settings.REDIS_URL)
    client_.set(lock, "other-drain")
    try:
        post(client, {"site_key": "sk_events", "events": [event(1)]})  # the kicked drain finds the lock taken

        assert (drain_event_spool(), spooled_batches()) == (0, 1)
    finally:
        client_.delete(lock)
    assert (drain_event_spool(), spooled_batches()) == (1, 0)


def test_a_journal_another_process_holds_open_is_left_alone(client: Client, store: Store, settings: Any) -> None:
    settings.EVENTS_SPOOL_URL = ""
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 3600
    events_service._next_kick = time.monotonic() + 3600  # no drain kicked by the post
    post(client, {"site_key": "sk_events", "events": [event(1)]})
    spool = events_service._spool()
    assert isinstance(spool, events_service._JournalSpool)
    spool.seal()
    (journal,) = Path(settings.EVENTS_SPOOL_DIR).glob("*.journal")

    with open(journal, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a live web process holds its open journal
        assert (drain_event_spool(), spooled_batches()) == (0, 1)
    assert (drain_event_spool(), spooled_batches()) == (1, 0)
    assert list(Path(settings.EVENTS_SPOOL_DIR).glob("*.journal")) == []


def test_a_torn_journal_tail_is_dropped_and_the_records_before_it_are_written(
    client: Client, store: Store, settings: Any
) -> None:
    settings.EVENTS_SPOOL_URL = ""
    post(client, {"site_key": "sk_events", "events": [event(1)]})
    folder = Path(settings.EVENTS_SPOOL_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    good = json.dumps({"site_key": "sk_events", "events": [event(2)]}).encode()
    (folder / "00000000000000000001-1-dead.journal").write_bytes(
        f"{len(good)} - 1780000000.000\n".encode() + good + b'500 - 1780000000.000\n{"site_key"'
    )

    assert drain_event_spool() == 1
    assert [r[1] for r in stored()] == ["e1", "e2"]


def test_old_shopper_clocks_are_clamped_to_a_week_before_arrival(client: Client, store: Store) -> None:
    post(client, {"site_key": "sk_events", "events": [event(1, ts=978_307_200_000)]})  # 2001

    row = ShopperEvent.objects.get()
    assert row.received_at - row.occurred_at == timedelta(days=7)


def test_a_batch_of_a_store_deleted_after_intake_is_dropped_and_the_spool_moves_on(
    client: Client, store: Store, settings: Any, spool: str
) -> None:
    # given: a batch spooled for a store that is then deleted, and a batch of another store behind it
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 3600  # no drain until the test asks for one
    doomed = StoreFactory.create(domain="gone.example.com", site_key="sk_gone")
    drain_event_spool()
    assert post(client, {"site_key": "sk_gone", "events": [event(1)]}).status_code == 204
    assert post(client, {"site_key": "sk_events", "events": [event(2)]}).status_code == 204
    doomed.delete()

    # when
    written = drain_event_spool()

    # then: the deleted store's events are gone, the other store's are stored, and nothing is left stuck
    assert written == 1
    assert [row[:2] for row in stored()] == [("sk_events", "e2")]
    assert spooled_batches() == 0


def test_the_api_schema_documents_the_intake_with_its_own_limits_and_a_documented_batch_is_accepted(
    client: Client, store: Store
) -> None:
    # given
    schema = client.get("/api/schema/", {"format": "json"}).json()

    # when
    operation = schema["paths"]["/api/v1/events"]["post"]
    batch_schema = operation["requestBody"]["content"]["text/plain"]["schema"]
    event_schema = batch_schema["properties"]["events"]["items"]
    documented = {
        "site_key": "sk_events",
        "events": [
            {"event_id": "e-doc", "type": event_schema["properties"]["type"]["enum"][-1], "ts": TS, "sku": "SKU-1"}
        ],
    }

    # then
    assert event_schema["properties"]["type"]["enum"] == ["view", "impression", "click", "add_to_cart", "purchase"]
    assert batch_schema["properties"]["events"]["maxItems"] == 50
    assert event_schema["required"] == ["event_id", "type", "ts", "sku"]
    assert sorted(operation["responses"]) == ["204", "400", "404", "413", "415", "429", "503"]
    assert post(client, documented).status_code == 204
    assert post(client, {**documented, "events": [event(n) for n in range(51)]}).status_code == 400
