"""GET /api/v1/recommendations with experiments: the arm a session id picks, each card's list, settings, currency."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from catalog_sync.models import Product
from merchants.models import Store
from recommendations.experiments import assign_arm
from recommendations.models import PlacementSettings
from recommendations.services.experiments import start_experiment
from recommendations.tests.test_serving import make_product, make_store, store_list

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"
NETWORK_IDS = ["p1", "p2", "p3", "p4"]
LOCAL_IDS = ["p5", "p6", "p7", "p8"]


@pytest.fixture(autouse=True)
def _serving_settings(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    settings.RECS_ANSWER_CACHE_SECONDS = 0
    cache.clear()


@pytest.fixture
def shop() -> tuple[Store, dict[str, str]]:
    """A store whose product p0 has a fresh network list (p1-p4) and a local list (p5-p8); returns their rec ids."""
    store = make_store()
    products: list[Product] = [make_product(store, n) for n in range(9)]
    network = store_list(store, products[0], NETWORK_IDS, source="network")
    local = store_list(store, products[0], LOCAL_IDS, source="local")
    return store, {"network": network.rec_id, "local": local.rec_id}


def sid_for(store: Store, experiment_id: int, arm: str, weights: dict[str, int]) -> str:
    """The first session id the experiment puts in this arm."""
    for n in range(1000):
        sid = f"session-{n:04d}"
        if assign_arm(store_id=store.id, experiment_id=experiment_id, session_id=sid, weights=weights) == arm:
            return sid
    raise AssertionError(f"no session lands in {arm}")


def ask(client: Client, **params: str) -> Any:
    return client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "4", **params})


def cards(response: Any) -> list[tuple[str, str, str]]:
    return [(item["sku"], item["source"], item["rec_id"]) for item in response.json()["items"]]


def test_outside_an_experiment_cards_carry_their_list_and_the_arm_is_null(
    client: Client, shop: tuple[Store, dict[str, str]]
) -> None:
    _, ids = shop

    answer = ask(client, sid="session-0001")

    assert answer.json()["arm"] is None
    assert cards(answer) == [(f"SKU-{n}", "network", ids["network"]) for n in range(1, 5)]


WEIGHTS = {"network": 1, "local": 1, "holdout": 1, "interleave": 1}


def test_each_arm_serves_its_lists(client: Client, shop: tuple[Store, dict[str, str]]) -> None:
    store, ids = shop
    experiment = start_experiment(store=store, name="all arms", weights=WEIGHTS)

    network = ask(client, sid=sid_for(store, experiment.id, "network", WEIGHTS))
    local = ask(client, sid=sid_for(store, experiment.id, "local", WEIGHTS))
    holdout = ask(client, sid=sid_for(store, experiment.id, "holdout", WEIGHTS))

    assert (network.json()["arm"], cards(network)) == (
        "network",
        [(f"SKU-{n}", "network", ids["network"]) for n in range(1, 5)],
    )
    assert (local.json()["arm"], cards(local)) == ("local", [(f"SKU-{n}", "local", ids["local"]) for n in range(5, 9)])
    assert (holdout.json()["arm"], holdout.json()["items"], holdout.json()["rec_id"]) == ("holdout", [], None)
    assert holdout["Cache-Control"] == "private, no-store"


def test_the_interleaved_arm_merges_both_lists_by_team_draft_and_each_card_credits_its_list(
    client: Client, shop: tuple[Store, dict[str, str]]
) -> None:
    store, ids = shop
    experiment = start_experiment(store=store, name="interleave", weights={"interleave": 1})
    sid = "session-interleaved"

    answer = ask(client, sid=sid)

    assert answer.json()["arm"] == "interleave"
    assert answer["Cache-Control"] == "private, no-store"
    shown = cards(answer)
    assert [source for _, source, _ in shown].count("network") == 2
    assert [source for _, source, _ in shown].count("local") == 2
    assert {sku for sku, source, _ in shown if source == "network"} == {"SKU-1", "SKU-2"}  # each team's best first
    assert {sku for sku, source, _ in shown if source == "local"} == {"SKU-5", "SKU-6"}
    assert all(rec_id == ids[source] for _, source, rec_id in shown)
    assert cards(ask(client, sid=sid)) == shown  # the same page shows the same order on reload
    assert experiment.weights == {"interleave": 1}


def test_without_a_session_id_the_default_arm_is_served_unlabelled(
    client: Client, shop: tuple[Store, dict[str, str]]
) -> None:
    store, ids = shop
    start_experiment(store=store, name="local default", weights={"network": 1}, default_arm="local")

    answer = ask(client)

    assert answer.json()["arm"] is None  # left out of the experiment's figures
    assert cards(answer) == [(f"SKU-{n}", "local", ids["local"]) for n in range(5, 9)]


def test_cached_answers_are_kept_apart_per_arm(
    client: Client, shop: tuple[Store, dict[str, str]], settings: Any
) -> None:
    settings.RECS_ANSWER_CACHE_SECONDS = 60
    store, _ = shop
    weights = {"network": 1, "local": 1}
    experiment = start_experiment(store=store, name="split", weights=weights)
    network_sid = sid_for(store, experiment.id, "network", weights)
    local_sid = sid_for(store, experiment.id, "local", weights)

    first = [ask(client, sid=network_sid), ask(client, sid=local_sid), ask(client)]
    again = [ask(client, sid=network_sid), ask(client, sid=local_sid), ask(client)]

    assert [a.json()["arm"] for a in first] == ["network", "local", None]
    assert [{s for _, s, _ in cards(a)} for a in first] == [{"network"}, {"local"}, {"network"}]
    assert [a.content for a in again] == [a.content for a in first]


def test_a_bad_session_id_is_a_400(client: Client, shop: tuple[Store, dict[str, str]]) -> None:
    answer = ask(client, sid="short")

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "sid" in answer.json()["detail"]


def test_placement_settings_currency_and_locale_come_with_the_answer(client: Client) -> None:
    store = make_store(currency="eur", locale="de-DE")
    make_product(store, 0)
    PlacementSettings.objects.create(store=store, placement="product", title="Dazu passt", count=6, layout="row")

    answer = ask(client).json()

    assert (answer["settings"], answer["currency"], answer["locale"]) == (
        {"title": "Dazu passt", "layout": "row", "count": 6, "anonymous_events": True},
        "EUR",
        "de-DE",
    )


def test_the_currency_falls_back_to_the_catalog_s(client: Client) -> None:
    store = make_store(locale="<script>")
    make_product(store, 0, currency="gbp")

    answer = ask(client).json()

    assert (answer["currency"], answer["locale"]) == ("GBP", "")
