"""evaluate_recs --serving stored-lists: the cases answered through the widget's selector on stored lists."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.management import call_command

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.engine import Recommender, ScoredItem
from recommendations.engine.core import Reason
from recommendations.evaluation import EvalCase, Serving, run_evaluation, stored_lists_rankings

TINY = Path(__file__).parent / "data" / "tiny_interactions.json"


@dataclass(frozen=True)
class _Item:
    id: str


class FixedLists:
    """An engine stand-in whose lists are fixed, so the selector's merged answer is known by construction."""

    def __init__(self, ids: Sequence[str], lists: dict[str, list[str]], home: list[str], step: float = 0.01) -> None:
        self.items = [_Item(x) for x in ids]
        self.lists = lists
        self.home = home
        self.step = step  # the n-th item of a list scores 1 - n * step

    def _scored(self, ids: Sequence[str]) -> list[ScoredItem]:
        return [ScoredItem(id=x, score=1.0 - n * self.step, reason=Reason.SIMILAR) for n, x in enumerate(ids)]

    def precompute(self, *, limit: int = 10, ids: Iterable[str] | None = None) -> dict[str, list[ScoredItem]]:
        return {x: self._scored(self.lists.get(x, [])[:limit]) for x in ids or []}

    def recommend(self, *, query_id: str | None, placement: str, limit: int, **_: Any) -> list[ScoredItem]:
        return self._scored(self.home[:limit] if placement == "home" else [])


@pytest.mark.django_db
def test_stored_lists_path_answers_each_case_with_the_selectors_merged_answer(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 5000  # the path turns the live engine off itself
    store: Store = StoreFactory.create(domain="shop.example.com")
    for n in range(1, 11):
        # SKUs differ from the item ids: the cases are asked by SKU and answered back in item ids.
        ProductFactory.create(store=store, external_id=f"p{n}", sku=f"SKU-{n}", in_stock=n != 9)
    engine = FixedLists(
        [f"p{n}" for n in range(1, 11)],
        lists={"p1": ["p2", "p3"], "p4": ["p5", "p1", "p6"], "p7": ["p8", "p2", "p9"]},
        home=["p6", "p3", "p9", "p10"],
    )
    cases = [
        # query p1, viewed p4 then p7 (most recent first): the three lists blended with weights 1, .7, .49 (over
        # 2.19): p2 .457 + .224 * .99, p3 .452, p5 .320, p6 .313, p8 .224, p9 .219; the history never shown, p9 out
        # of stock (default rule), the home list tops up p10.
        EvalCase(user_id="u1", history=("p7", "p4", "p1"), target="p6"),
        # no session: the query's own list, then the home list.
        EvalCase(user_id="u2", history=("p4",), target="p10"),
    ]

    rankings = stored_lists_rankings(store, cast(Recommender, engine), cases, k=10)

    assert rankings == [["p2", "p3", "p5", "p6", "p8", "p10"], ["p5", "p1", "p6", "p3", "p10"]]
    assert Product.objects.filter(store=store).count() == 10


@pytest.mark.django_db
def test_stored_lists_path_respects_k() -> None:
    store: Store = StoreFactory.create(domain="shop.example.com")
    for n in range(1, 5):
        ProductFactory.create(store=store, external_id=f"p{n}", sku=f"SKU-{n}")
    engine = FixedLists([f"p{n}" for n in range(1, 5)], lists={"p1": ["p2", "p3", "p4"]}, home=[])

    rankings = stored_lists_rankings(store, cast(Recommender, engine), [EvalCase("u", ("p1",), "p3")], k=2)

    assert rankings == [["p2", "p3"]]


@pytest.mark.django_db
def test_evaluate_recs_says_which_path_answered_and_leaves_no_store_behind() -> None:
    stores_before = Store.objects.count()
    outputs = {}
    for serving in ("engine", "stored-lists"):
        out = StringIO()
        call_command("evaluate_recs", "--interactions", str(TINY), "--no-progress", "--serving", serving, stdout=out)
        outputs[serving] = json.loads(out.getvalue())

    assert outputs["engine"]["serving"] == "engine"
    assert outputs["stored-lists"]["serving"] == "stored-lists"
    assert outputs["stored-lists"]["users"] == 3
    assert Store.objects.count() == stores_before
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_stored_lists_serve_the_tiny_files_obvious_next_item() -> None:
    # As the engine path: u1's query is the ruled A5 notebook, the stored list's first item the dotted one.
    result = run_evaluation(path=TINY, k=1, serving=Serving.STORED_LISTS)

    assert result.as_dict()["hit_rate@1"] == round(1 / 3, 4)
    assert result.serving == "stored-lists"


def test_baselines_have_no_stored_lists_path() -> None:
    with pytest.raises(ValueError, match="only the engine"):
        run_evaluation(path=TINY, model="popularity", serving=Serving.STORED_LISTS)


@pytest.mark.django_db
def test_a_session_products_list_reaches_the_stored_lists_answer() -> None:
    store: Store = StoreFactory.create(domain="shop.example.com")
    for n in range(1, 8):
        ProductFactory.create(store=store, external_id=f"p{n}", sku=f"SKU-{n}")
    engine = FixedLists(
        [f"p{n}" for n in range(1, 8)], lists={"p1": ["p2", "p3", "p4", "p5"], "p6": ["p7", "p2"]}, home=[], step=0.4
    )

    [answer] = stored_lists_rankings(store, cast(Recommender, engine), [EvalCase("u", ("p6", "p1"), "p7")], k=2)

    # query p1 (weight 1 / 1.7), viewed p6 (.7 / 1.7): p2 .588 + .412 * .6, p7 .412, p3 .588 * .6 = .353
    assert answer == ["p2", "p7"]
