"""Property tests of validator answers: whatever a validator answers /rec, asking the network records an outcome.

Hypothesis, derandomized. ValidatorClient gets canned HTTP answers (the process boundary): any status, headers
and body, from a §1.10 success with odd fields to arbitrary JSON and bytes. The properties, on
`ask_network_for_product` (what the ask task runs):
- it raises nothing: every answer ends as a NetworkRequest that is answered, rejected or failed;
- an answered request stores the validator's SKUs as the product's network list, in order;
- a rejected or failed one stores no list.
Run on PostgreSQL too (DATABASE_URL): it refuses NUL characters that SQLite stores.
"""

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer
from subnet.client import ValidatorClient
from subnet.models import NetworkRequest
from subnet.services import ask_network_for_product
from subnet.tests.conftest import API_KEY, RFC_PRIVATE_KEY_HEX, rec_success

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CATALOG = ["TEE-BLUE", "TEE-RED", "TEE-GREEN", "HOODIE", "JEANS", "CAP", "HOSE", "MUG", "LAMP"]
QUERY = "TEE-BLUE"

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=10)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    st.just("a\x00b"),
    st.integers(min_value=200, max_value=3000).map(lambda n: "w" * n),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid shape four times in five, otherwise any odd value."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: valid if n else odd)


skus = st.one_of(
    st.lists(st.sampled_from(CATALOG[1:]), min_size=3, max_size=3, unique=True),
    st.lists(st.sampled_from(CATALOG[1:]), min_size=3, max_size=3, unique=True),
    st.lists(mostly(st.sampled_from(CATALOG)), min_size=0, max_size=5),
)


@st.composite
def success_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = rec_success(draw(skus), query=QUERY)
    for key in draw(st.sets(st.sampled_from(sorted(body)), max_size=2) | st.just(set())):
        body[key] = draw(odd)
    for item in body["results"] if isinstance(body["results"], list) else []:
        for key in draw(st.sets(st.sampled_from(["name", "price", "reason", "extra\x00"]), max_size=1)):
            item[key] = draw(odd)
    return body


error_bodies = st.fixed_dictionaries(
    {"detail": mostly(st.sampled_from(["error", "error - forward", "General", "Unauthorized", "x\x00y"]))},
    optional={"retry_after": odd, "status_code": odd},
)
answers = st.one_of(
    st.tuples(st.just(200), success_bodies().map(json.dumps).map(str.encode)),
    st.tuples(st.just(200), success_bodies().map(json.dumps).map(str.encode)),
    st.tuples(
        st.sampled_from([400, 401, 403, 415, 422, 429, 500, 502, 503]), error_bodies.map(json.dumps).map(str.encode)
    ),
    st.tuples(st.sampled_from([200, 204, 301, 404, 500]), st.binary(max_size=60)),
)


class CannedSession(requests.Session):
    """Answers every request with one status and body: the HTTP boundary of ValidatorClient."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__()
        self.answer = (status, body, headers)

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        status, body, headers = self.answer
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.headers.update({"Content-Type": "application/json", **headers})
        response.url = str(url)
        return response


@pytest.fixture
def shop(settings: Any) -> Store:
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    store = StoreFactory.create(site_key="shop-fuzz")
    for index, sku in enumerate(CATALOG):
        ProductFactory(store=store, external_id=f"fuzz-{index}", sku=sku, title=f"Product {sku}", price=Decimal("9"))
    return store


@PROPERTY
@given(answer=answers, retry_after=st.sampled_from(["", "5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "1e400"]))
def test_any_validator_answer_ends_as_a_recorded_outcome_and_only_an_answer_stores_a_list(shop, answer, retry_after):
    status, body = answer
    session = CannedSession(status, body, {"Retry-After": retry_after} if retry_after else {})
    client = ValidatorClient(
        "http://validator.test",
        API_KEY,
        network="test",
        signing_key=RFC_PRIVATE_KEY_HEX,
        session=session,
        max_attempts=1,
        requests_per_minute=10**9,
        max_in_flight=10**6,
        sleep=lambda _: None,
    )
    product = Product.objects.get(store=shop, sku=QUERY)
    with transaction.atomic():
        record = ask_network_for_product(client=client, store=shop, product=product, num_results=3)
        event(f"{record.status}: {record.error_code or 'ok'}")
        stored = NetworkRequest.objects.get(id=record.id)
        assert stored.status in NetworkRequest.Status.values
        answers = list(NetworkAnswer.objects.filter(store=shop))
        if stored.status == NetworkRequest.Status.ANSWERED:
            sent = [item["sku"] for item in json.loads(body)["results"]]
            assert [answer.item_ids for answer in answers] == [[f"fuzz-{CATALOG.index(sku)}" for sku in sent]]
        else:
            assert answers == []
            assert stored.error_code
        transaction.set_rollback(True)


def test_a_validator_error_text_with_nul_is_recorded_without_it(shop):
    # given: found by the property above on PostgreSQL (text cannot hold NUL; the ask task crashed on save)
    body = json.dumps({"detail": "upstream\x00 broke"}).encode()
    client = ValidatorClient(
        "http://validator.test",
        API_KEY,
        network="test",
        signing_key=RFC_PRIVATE_KEY_HEX,
        session=CannedSession(502, body, {}),
        max_attempts=1,
        sleep=lambda _: None,
    )

    # when
    record = ask_network_for_product(
        client=client, store=shop, product=Product.objects.get(store=shop, sku=QUERY), num_results=3
    )

    # then
    stored = NetworkRequest.objects.get(id=record.id)
    assert (stored.status, stored.error_code) == (NetworkRequest.Status.FAILED, "ValidatorInternalError")
    assert stored.error_message == "validator error (502): upstream broke"
