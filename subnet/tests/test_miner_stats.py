"""`GET /subnet/miner/stats/from/<from>/to/<to>`: purchases attributed to miners, as the public validators read them."""

import functools
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.test import Client

from catalog_sync.models import OrderLine
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, ShopperEvent
from subnet import views
from subnet.stats import ActionType, MinerAction, list_miner_actions, list_purchases

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
FROM = int(T0.timestamp())  # 1748779200
TO = FROM + 3600
_line_ids = count(1)


def url(start: int | str, end: int | str) -> str:
    return f"/subnet/miner/stats/from/{start}/to/{end}"


def answer(store: Store, rec_id: str, hotkey: str) -> NetworkAnswer:
    return NetworkAnswer.objects.create(store=store, placement="product", rec_id=rec_id, miner_hotkey=hotkey)


def line(
    store: Store, *, at: datetime, rec_id: str = "", sku: str = "TEE", external_id: str = "p1", **kw: Any
) -> OrderLine:
    n = next(_line_ids)
    return OrderLine.objects.create(
        store=store,
        order_id=f"o{n}",
        line_id=f"l{n}",
        created_at=at,
        rec_id=rec_id,
        sku=sku,
        product_external_id=external_id,
        **kw,
    )


def event(
    store: Store, *, at: datetime, rec_id: str, hotkey: str, kind: str = "view", sku: str = "TEE", source: str = ""
) -> ShopperEvent:
    n = next(_line_ids)
    return ShopperEvent.objects.create(
        store=store,
        event_id=f"e{n}",
        type=kind,
        occurred_at=at,
        received_at=at,
        sku=sku,
        rec_id=rec_id,
        source=source or ("network" if rec_id.startswith("n_") else "local"),
        miner_hotkey=hotkey,
    )


def purchase(site_key: str, sku: str, hot_key: str, created_at: str) -> dict[str, str]:
    return {
        "ip": "",
        "site_info": site_key,
        "user": "",
        "action": "PURCHASE",
        "sku": sku,
        "hot_key": hot_key,
        "created_at": created_at,
    }


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(site_key="sk_shop")


# --- what counts as a purchase -----------------------------------------------------------------------------------


def test_only_lines_whose_network_rec_id_names_a_miner_are_listed(client: Client, store: Store) -> None:
    # given
    answer(store, "n_known", "5Fminer")
    answer(store, "n_nohotkey", "")
    other = StoreFactory.create(site_key="sk_other")
    answer(other, "n_elsewhere", "5Fother")
    line(store, at=T0 + timedelta(minutes=10), rec_id="n_known", sku="TEE-1", quantity=3)
    line(store, at=T0 + timedelta(minutes=11), rec_id="l_local")
    line(store, at=T0 + timedelta(minutes=12), rec_id="")
    line(store, at=T0 + timedelta(minutes=13), rec_id="n_unknown")
    line(store, at=T0 + timedelta(minutes=14), rec_id="n_nohotkey")
    line(store, at=T0 + timedelta(minutes=15), rec_id="n_elsewhere")  # another store's answer
    line(store, at=T0 - timedelta(days=1), rec_id="n_known")  # before the window
    line(store, at=T0 + timedelta(days=1), rec_id="n_known")  # after it
    line(store, at=T0 + timedelta(minutes=20, seconds=5, microseconds=7), rec_id="n_known", sku="", external_id="gid-9")

    # when
    response = client.get(url(FROM, TO))

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == [
        purchase("sk_shop", "TEE-1", "5Fminer", "2025-06-01T12:10:00Z"),
        purchase("sk_shop", "gid-9", "5Fminer", "2025-06-01T12:20:05Z"),
    ]
    assert not response.has_header("X-Truncated")


def test_both_ends_of_the_window_are_included_to_the_second(client: Client, store: Store) -> None:
    answer(store, "n_a", "5Fminer")
    for at, sku in [
        (T0 - timedelta(microseconds=1), "BEFORE"),
        (T0, "AT-FROM"),
        (T0 + timedelta(seconds=3600), "AT-TO"),
        (T0 + timedelta(seconds=3600, microseconds=999_999), "IN-LAST-SECOND"),
        (T0 + timedelta(seconds=3601), "AFTER"),
    ]:
        line(store, at=at, rec_id="n_a", sku=sku)

    response = client.get(url(FROM, TO))

    assert [(a["sku"], a["created_at"]) for a in response.json()] == [
        ("AT-FROM", "2025-06-01T12:00:00Z"),
        ("AT-TO", "2025-06-01T13:00:00Z"),
        ("IN-LAST-SECOND", "2025-06-01T13:00:00Z"),
    ]


def test_a_one_second_window_lists_that_second(client: Client, store: Store) -> None:
    answer(store, "n_a", "5Fminer")
    line(store, at=T0, rec_id="n_a")
    line(store, at=T0 + timedelta(seconds=1), rec_id="n_a")

    assert client.get(url(FROM, FROM)).json() == [purchase("sk_shop", "TEE", "5Fminer", "2025-06-01T12:00:00Z")]


def test_actions_of_all_stores_are_listed_oldest_first_then_by_row(client: Client, store: Store) -> None:
    other = StoreFactory.create(site_key="sk_other")
    answer(store, "n_a", "5Fa")
    answer(other, "n_b", "5Fb")
    line(other, at=T0 + timedelta(minutes=2), rec_id="n_b", sku="B-LATE")
    line(store, at=T0 + timedelta(minutes=1), rec_id="n_a", sku="A-FIRST")
    line(other, at=T0 + timedelta(minutes=1), rec_id="n_b", sku="B-SAME-TIME")

    response = client.get(url(FROM, TO))

    assert [(a["site_info"], a["sku"], a["hot_key"]) for a in response.json()] == [
        ("sk_shop", "A-FIRST", "5Fa"),
        ("sk_other", "B-SAME-TIME", "5Fb"),
        ("sk_other", "B-LATE", "5Fb"),
    ]


def test_an_empty_window_is_an_empty_list(client: Client, store: Store) -> None:
    answer(store, "n_a", "5Fminer")
    line(store, at=T0 + timedelta(days=2), rec_id="n_a")

    response = client.get(url(FROM, TO))

    assert (response.status_code, response["Content-Type"], response.json()) == (200, "application/json", [])


def test_the_answer_takes_one_query_per_source_however_many_rows(
    client: Client, store: Store, django_assert_num_queries: Any
) -> None:
    other = StoreFactory.create(site_key="sk_other")
    for n in range(4):
        answer(store, f"n_s{n}", f"5Fs{n}")
        answer(other, f"n_o{n}", f"5Fo{n}")
        line(store, at=T0 + timedelta(minutes=n), rec_id=f"n_s{n}")
        line(other, at=T0 + timedelta(minutes=n), rec_id=f"n_o{n}")
        line(store, at=T0 + timedelta(minutes=n), rec_id=f"l_{n}")

        event(store, at=T0 + timedelta(minutes=n), rec_id=f"n_s{n}", hotkey=f"5Fs{n}")

    with django_assert_num_queries(2):  # order lines, widget events
        response = client.get(url(FROM, TO))

    assert len(response.json()) == 12


# --- bounds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "detail"),
    [
        (TO, FROM, f"window: from ({TO}) is after to ({FROM})."),
        (FROM, FROM + 120 * 86400 + 1, "window: The window is longer than 120 days."),
        (-1, TO, "from: Ensure this value is greater than or equal to 0."),
        (FROM, -5, "to: Ensure this value is greater than or equal to 0."),
        (FROM, 10**15, "to: Ensure this value is less than or equal to 32503680000."),
    ],
)
def test_a_bad_window_is_a_400_that_says_why(client: Client, start: int, end: int, detail: str) -> None:
    response = client.get(url(start, end))

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["error"], body["detail"]) == ("invalid_request", detail)


def test_a_window_of_exactly_120_days_is_accepted(client: Client) -> None:
    assert client.get(url(FROM, FROM + 120 * 86400)).json() == []


def test_a_huge_number_is_a_400_not_a_500(client: Client) -> None:
    response = client.get(url("9" * 2000, TO))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", [url("abc", TO), url(FROM, "1.5"), url(FROM, ""), url(FROM, TO) + "/"])
def test_a_time_that_is_not_an_integer_is_a_404(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_list_is_capped_oldest_first_and_flags_the_cut(
    client: Client, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "list_miner_actions", functools.partial(list_miner_actions, limit=2))
    answer(store, "n_a", "5Fminer")
    for minute, sku in [(3, "THIRD"), (1, "FIRST"), (2, "SECOND")]:
        line(store, at=T0 + timedelta(minutes=minute), rec_id="n_a", sku=sku)

    response = client.get(url(FROM, TO))

    assert [a["sku"] for a in response.json()] == ["FIRST", "SECOND"]
    assert response["X-Truncated"] == "true"


# --- the selector ------------------------------------------------------------------------------------------------


def test_sources_are_merged_by_time_and_the_limit_applies_to_the_merge(store: Store) -> None:
    answer(store, "n_a", "5Fminer")
    line(store, at=T0 + timedelta(minutes=1), rec_id="n_a", sku="BOUGHT-1")
    line(store, at=T0 + timedelta(minutes=3), rec_id="n_a", sku="BOUGHT-3")

    def views_source(start: datetime, end: datetime, limit: int) -> list[MinerAction]:
        return [
            MinerAction(
                site_info="sk_shop",
                action=ActionType.VIEW_PRODUCT,
                sku=f"VIEWED-{minute}",
                hot_key="5Fminer",
                created_at=T0 + timedelta(minutes=minute),
                source_rank=1,
                row_id=minute,
            )
            for minute in (0, 1, 2)
        ][:limit]

    page = list_miner_actions(start=T0, end=T0 + timedelta(hours=1), limit=4, sources=(list_purchases, views_source))

    assert [(a.action.value, a.sku) for a in page.actions] == [
        ("VIEW_PRODUCT", "VIEWED-0"),
        ("PURCHASE", "BOUGHT-1"),
        ("VIEW_PRODUCT", "VIEWED-1"),
        ("VIEW_PRODUCT", "VIEWED-2"),
    ]
    assert page.is_truncated is True


def test_widget_views_and_add_to_carts_from_network_cards_are_listed_with_purchases(
    client: Client, store: Store
) -> None:
    answer(store, "n_a", "5Fminer")
    event(store, at=T0 + timedelta(minutes=1), rec_id="n_a", hotkey="5Fminer", kind="impression")
    event(store, at=T0 + timedelta(minutes=2), rec_id="n_a", hotkey="5Fminer", kind="click")
    event(store, at=T0 + timedelta(minutes=3), rec_id="n_a", hotkey="5Fminer", kind="view", sku="TEE-V")
    event(store, at=T0 + timedelta(minutes=4), rec_id="n_a", hotkey="5Fminer", kind="add_to_cart", sku="TEE-C")
    event(store, at=T0 + timedelta(minutes=4), rec_id="l_x", hotkey="", kind="add_to_cart")  # local card
    event(store, at=T0 + timedelta(minutes=4), rec_id="n_gone", hotkey="", kind="view")  # no miner named
    event(store, at=T0 + timedelta(minutes=5), rec_id="n_a", hotkey="5Fminer", kind="purchase")  # the order counts
    line(store, at=T0 + timedelta(minutes=6), rec_id="n_a", sku="TEE-P")

    response = client.get(url(FROM, TO))

    assert [(a["action"], a["sku"], a["hot_key"], a["created_at"]) for a in response.json()] == [
        ("VIEW_PRODUCT", "TEE-V", "5Fminer", "2025-06-01T12:03:00Z"),
        ("ADD_TO_CART", "TEE-C", "5Fminer", "2025-06-01T12:04:00Z"),
        ("PURCHASE", "TEE-P", "5Fminer", "2025-06-01T12:06:00Z"),
    ]
    assert {a["site_info"] for a in response.json()} == {"sk_shop"}


def test_a_purchase_and_a_view_in_the_same_second_list_the_purchase_first(client: Client, store: Store) -> None:
    answer(store, "n_a", "5Fminer")
    event(store, at=T0 + timedelta(minutes=1), rec_id="n_a", hotkey="5Fminer", sku="VIEWED")
    line(store, at=T0 + timedelta(minutes=1), rec_id="n_a", sku="BOUGHT")

    assert [a["sku"] for a in client.get(url(FROM, TO)).json()] == ["BOUGHT", "VIEWED"]


def test_the_endpoint_is_in_the_openapi_schema(client: Client) -> None:
    schema = client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/subnet/miner/stats/from/{from}/to/{to}"]["get"]
    assert [(p["name"], p["in"], p["schema"]["type"]) for p in operation["parameters"]] == [
        ("from", "path", "integer"),
        ("to", "path", "integer"),
    ]
    assert set(operation["responses"]) == {"200", "400", "404"}
    assert sorted(schema["components"]["schemas"]["MinerAction"]["required"]) == sorted(
        ["ip", "site_info", "user", "action", "sku", "hot_key", "created_at"]
    )
