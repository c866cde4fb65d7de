"""Property tests of the widget's event batches (POST /api/v1/events): parse_event_batch, then write_event_records.

Hypothesis, derandomized. Bodies are arbitrary bytes, hostile JSON text, or batches whose fields are sometimes
right and sometimes odd. The properties:
- parse_event_batch raises nothing but InvalidRequest (400, a message naming the field);
- a batch it accepts is stored as it was sent, one row per distinct event id (sku stripped; the time clamped
  into the week before receipt, as write_event_records documents);
- a refused body stores nothing, and the view answers it with a 4xx JSON body, never a 5xx.
Run on PostgreSQL too (DATABASE_URL): it refuses NUL and over-long text that SQLite stores.
"""

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import EVENT_ID_MAX_LENGTH, REC_ID_MAX_LENGTH, Arm, EventType, Placement, ShopperEvent
from recommendations.services.events import MAX_EVENT_AGE, parse_event_batch, write_event_records

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SITE_KEY = "fuzz-site-key"

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=10)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    st.integers(min_value=60, max_value=300).map(lambda n: "z" * n),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid shape nine times in ten, otherwise any odd value: enough batches pass to test storing them."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: valid if n else odd)


now_ms = int(time.time() * 1000)
event_fields = {
    "event_id": mostly(st.from_regex(rf"[A-Za-z0-9_.:-]{{1,{EVENT_ID_MAX_LENGTH}}}", fullmatch=True)),
    "type": mostly(st.sampled_from(EventType.values)),
    "ts": mostly(
        st.one_of(
            st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000),
            st.just(now_ms),
            st.sampled_from(["2026-11-03T08:30:00Z", "2026-11-03T08:30:00+05:30"]),
        )
    ),
    "sku": mostly(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=20) | st.just(" SKU-1 ")
    ),
}
optional_fields = {
    "rec_id": mostly(st.from_regex(rf"[A-Za-z0-9_-]{{1,{REC_ID_MAX_LENGTH}}}", fullmatch=True)),
    "placement": mostly(st.sampled_from(Placement.values)),
    "arm": mostly(st.sampled_from(Arm.values)),
    "session_id": mostly(st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True)),
    "extra": odd,
}
events = st.fixed_dictionaries(event_fields, optional=optional_fields)
batches = st.fixed_dictionaries(
    {"site_key": mostly(st.just(SITE_KEY)), "events": mostly(st.lists(mostly(events), min_size=1, max_size=4))},
    optional={"extra": odd},
)
bodies = st.one_of(
    batches.map(lambda batch: json.dumps(batch).encode()),
    batches.map(lambda batch: json.dumps(batch).encode()),
    batches.map(lambda batch: json.dumps(batch, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"site_key": NaN}', b"[" * 5000, b'{"a":' * 200, b"1e999"]),
)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(site_key=SITE_KEY)


@PROPERTY
@given(body=bodies)
def test_a_batch_is_stored_as_sent_or_refused_with_invalid_request_and_nothing_stored(store, body):
    with transaction.atomic():
        try:
            batch = parse_event_batch(body=body)
        except InvalidRequest as exc:
            event("refused")
            assert exc.status_code == 400
            assert exc.message
            assert not ShopperEvent.objects.exists()
            transaction.set_rollback(True)
            return
        event("accepted")
        received = time.time()
        write_event_records(records=[{"k": batch.site_key, "s": store.id, "r": received, "e": list(batch.events)}])
        sent = json.loads(body)["events"]
        distinct = {raw["event_id"]: raw for raw in reversed(sent)}  # the first of a repeated id wins
        rows = {row.event_id: row for row in ShopperEvent.objects.filter(store=store)}
        assert set(rows) == set(distinct)
        received_at = datetime.fromtimestamp(received, tz=UTC)
        for event_id, raw in distinct.items():
            row = rows[event_id]
            assert (row.type, row.sku) == (raw["type"], raw["sku"].strip())
            assert (row.rec_id, row.placement, row.arm, row.session_id) == (
                raw.get("rec_id") or "",
                raw.get("placement") or "",
                raw.get("arm") or "",
                raw.get("session_id") or "",
            )
            assert received_at - MAX_EVENT_AGE <= row.occurred_at <= received_at
        transaction.set_rollback(True)


@PROPERTY
@given(body=bodies)
def test_the_events_endpoint_answers_any_body_without_a_server_error(client, store, body):
    response = client.generic("POST", "/api/v1/events", body, content_type="application/json")

    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.json()["error"]


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("type", [], "events[0].type: must be one of view, impression, click, add_to_cart, purchase."),
        ("placement", {"a": 1}, "events[0].placement: must be one of cart, home, product, or leave it out."),
        ("arm", ["network"], "events[0].arm: must be one of holdout, interleave, local, network, or leave it out."),
    ],
)
def test_a_list_or_object_where_a_choice_belongs_is_a_400_not_a_500(client, store, field, value, detail):
    # given: found by the property above (a list is unhashable, so the set lookup raised TypeError)
    sent = {"event_id": "e1", "type": "view", "ts": now_ms, "sku": "SKU-1", field: value}
    body = json.dumps({"site_key": SITE_KEY, "events": [sent]}).encode()

    # when
    response = client.generic("POST", "/api/v1/events", body, content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not ShopperEvent.objects.exists()
