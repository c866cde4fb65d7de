"""Checking a validator's answer against the store's catalog, the request's catalog, and text cleaning."""

import json
from decimal import Decimal

import pytest

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory
from merchants.tests.factories import StoreFactory
from subnet.answers import clean_text, find_sku_problem
from subnet.client import RecAnswer, RecommendedItem
from subnet.exceptions import AnswerRejected
from subnet.selectors import get_product_by_wire_sku, list_candidate_pool
from subnet.services import CheckedItem, build_context, check_answer

pytestmark = pytest.mark.django_db


def answer_for(*items: tuple[str, str]) -> RecAnswer:
    return RecAnswer(
        status_code="200",
        status_text="OK",
        original_query="TEE-1",
        results=tuple(RecommendedItem(sku=sku, name=name, price="1", reason="Goes well") for sku, name in items),
        models_used=("model/a",),
        miner_uid="42",
        miner_hotkey="5hk",
        created_at="2025-06-28T20:00:02",
        catalog_size="8",
        response_text="",
        reasoning="",
        user="",
        latency_seconds=0.5,
        attempts=1,
    )


@pytest.fixture
def store():
    store = StoreFactory()
    ProductFactory(store=store, external_id="p1", sku="TEE-1", title="Blue Tee", price=Decimal("10.00"))
    ProductFactory(store=store, external_id="p2", sku="CAP-1", title="Red Cap", price=Decimal("12.50"))
    ProductFactory(store=store, external_id="p3", sku="", title="Sock", price=Decimal("5.00"))
    ProductFactory(store=store, external_id="p4", sku="BELT-1", title="Belt", price=Decimal("20.00"))
    return store


# ------------------------------------------------------------------------------------------ check_answer


def test_accepted_answer_keeps_the_order_cleans_names_and_takes_catalog_prices(store):
    answer = answer_for(("CAP-1", "<b>Red</b>\x00 Cap &amp; more"), ("p3", "   "), ("BELT-1", "Belt\u202e"))

    checked = check_answer(store=store, answer=answer, query_sku="TEE-1", num_results=3)

    assert checked.results == (
        CheckedItem(sku="CAP-1", product_id="p2", name="Red Cap & more", price="12.50", reason="Goes well"),
        CheckedItem(sku="p3", product_id="p3", name="Sock", price="5.00", reason="Goes well"),
        CheckedItem(sku="BELT-1", product_id="p4", name="Belt", price="20.00", reason="Goes well"),
    )
    assert (checked.site_key, checked.query_sku, checked.miner_hotkey, checked.models_used) == (
        store.site_key,
        "TEE-1",
        "5hk",
        ("model/a",),
    )


@pytest.mark.parametrize(
    ("items", "code", "message"),
    [
        (
            (("CAP-1", "a"), ("NOPE", "b")),
            "unknown_sku",
            "result 2 has SKU 'NOPE', which is not in the store's catalog",
        ),
        ((("CAP-1", "a"), ("CAP-1", "b")), "duplicate_sku", "result 2 repeats SKU 'CAP-1'"),
        ((("CAP-1", "a"), ("tee-1", "b")), "query_sku", "result 2 is the query SKU 'TEE-1'"),
        ((("CAP-1", "a"),), "wrong_count", "expected 2 results, got 1"),
        ((("CAP-1", "a"), ("BELT-1", "b"), ("p3", "c")), "wrong_count", "expected 2 results, got 3"),
        ((("CAP-1", "a"), (" ", "b")), "empty_sku", "result 2 has an empty SKU"),
    ],
)
def test_bad_answers_are_rejected_saying_why(store, items, code, message):
    with pytest.raises(AnswerRejected) as caught:
        check_answer(store=store, answer=answer_for(*items), query_sku="TEE-1", num_results=2)

    assert (caught.value.code, caught.value.message) == (code, message)


def test_skus_of_another_store_are_unknown(store):
    other = StoreFactory()
    ProductFactory(store=other, sku="ELSEWHERE")

    with pytest.raises(AnswerRejected) as caught:
        check_answer(store=store, answer=answer_for(("ELSEWHERE", "x")), query_sku="TEE-1", num_results=1)

    assert caught.value.code == "unknown_sku"


# ------------------------------------------------------------------------------------------ text cleaning


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<script>alert(1)</script>Tee", "alert(1) Tee"),
        ("&lt;img src=x onerror=y&gt;Cap", "Cap"),
        ("Line\nbreak\ttab\r", "Line break tab"),
        ("zero\u200bwidth\u202eflip\x7f", "zerowidthflip"),
        ("Café Mug", "Café Mug"),
        ("", ""),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw, max_length=200) == clean


def test_clean_text_clips_to_the_length():
    assert clean_text("a" * 50 + " b", max_length=10) == "a" * 10


def test_find_sku_problem_accepts_a_good_list():
    assert find_sku_problem(skus=["A", "B"], query_sku="Q", num_results=2, is_known={"A", "B"}.__contains__) is None


# ------------------------------------------------------------------------------------ request catalog


def test_build_context_is_compact_json_with_string_prices(store):
    products = list(Product.objects.filter(store=store).order_by("id"))

    context = build_context(products=products)

    assert context == (
        '[{"sku":"TEE-1","name":"Blue Tee","price":"10.00"},{"sku":"CAP-1","name":"Red Cap","price":"12.50"},'
        '{"sku":"p3","name":"Sock","price":"5.00"},{"sku":"BELT-1","name":"Belt","price":"20.00"}]'
    )


def test_wire_sku_lookup_falls_back_to_the_platform_id(store):
    sock = get_product_by_wire_sku(store=store, sku="p3")
    tee = get_product_by_wire_sku(store=store, sku="TEE-1")

    assert sock is not None and sock.title == "Sock"
    assert tee is not None and tee.external_id == "p1"
    assert get_product_by_wire_sku(store=store, sku="p1") is None


def test_candidate_pool_starts_with_the_product_and_keeps_only_offerable_products():
    store = StoreFactory.create()
    query = ProductFactory.create(store=store, sku="TEE-1", title="Blue Cotton Tee")
    for i in range(12):
        ProductFactory(store=store, sku=f"TEE-{i + 2}", title=f"Cotton Tee colour {i}")
    hidden = [
        ProductFactory(store=store, sku="OUT", title="Cotton Tee out", in_stock=False),
        ProductFactory(store=store, sku="DRAFT", title="Cotton Tee draft", is_published=False),
        ProductFactory(store=store, sku="FREE", title="Cotton Tee free", price=Decimal("0")),
        ProductFactory(store=store, sku="NONAME", title="!!!", price=Decimal("3")),
    ]

    pool = list_candidate_pool(store=store, product=query, size=8)

    assert pool[0] == query
    assert len(pool) == 8
    assert len({product.sku for product in pool}) == 8
    assert not set(pool) & set(hidden)
    assert json.loads(build_context(products=pool))[0] == {"sku": "TEE-1", "name": "Blue Cotton Tee", "price": "10.00"}


def test_candidate_pool_size_is_bounded(store):
    with pytest.raises(ValueError, match="size must be 6 to 100"):
        list_candidate_pool(store=store, product=Product.objects.get(sku="TEE-1"), size=101)
