"""The overview checklist, the analytics page with its CSV, and the experiments page, through Django's test client."""

import csv
import io
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from catalog_sync.models import Product, SyncRun
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from recommendations.models import Experiment, VisitorDay
from recommendations.services.experiments import start_experiment
from recommendations.services.rollups import rollup_day
from recommendations.tests.figures import make_lists, place_order, send_events

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
D1 = date(2026, 11, 20)


@pytest.fixture
def merchant() -> tuple[Client, Store]:
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="pw")
    store = create_store(platform=Store.Platform.CUSTOM, domain="ann.example", name="Ann's")
    grant_store_access(user=user, store=store)
    client = Client()
    client.force_login(user)
    return client, store


@pytest.fixture
def other_store() -> Store:
    return create_store(platform=Store.Platform.CUSTOM, domain="bob.example", name="Bob's")


def _figures(store: Store) -> None:
    local, network = make_lists(store)
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    send_events(
        store,
        [
            {"type": "impression", "rec_id": local, "placement": "product", "session_id": "visitor-aaaa"},
            {"type": "impression", "rec_id": local, "placement": "product", "session_id": "visitor-aaaa"},
            {"type": "impression", "rec_id": network, "placement": "cart", "session_id": "visitor-bbbb"},
            {"type": "click", "rec_id": local, "placement": "product", "session_id": "visitor-aaaa"},
        ],
        at=at,
    )
    place_order(store, at=at, lines=[("SKU-1", "30.00", 2, local)], session_id="visitor-aaaa")
    place_order(store, at=at, lines=[("SKU-9", "15.00", 1, "")])
    rollup_day(day=D1, store_id=store.id)


def _steps(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-step="(\w+)" data-state="(\w+)"', html)


def test_a_new_store_shows_every_step_pending_with_what_to_do(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    store.status = Store.Status.PENDING
    store.save()

    html = client.get(f"/portal/stores/{store.pk}/").content.decode()

    assert _steps(html) == [
        ("connected", "pending"), ("catalog", "pending"), ("widget", "pending"), ("click", "pending"),
        ("order", "pending"),
    ]  # fmt: skip
    assert "Ask us to activate the store" in html
    assert 'http-equiv="refresh"' not in html


def test_a_running_sync_shows_its_progress_and_the_page_refreshes(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    store.status = Store.Status.ACTIVE
    store.save()
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.RUNNING, total=200, done=50)

    html = client.get(f"/portal/stores/{store.pk}/").content.decode()

    assert _steps(html)[:2] == [("connected", "done"), ("catalog", "running")]
    assert "Full sync running: 50 of 200 products done." in html
    assert '<progress max="100" value="25"' in html
    assert '<meta http-equiv="refresh" content="15">' in html


@time_machine.travel(NOW, tick=False)
def test_events_and_orders_tick_off_the_checklist(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    store.status = Store.Status.ACTIVE
    store.save()
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.SUCCEEDED, total=1, done=1)
    Product.objects.create(store=store, external_id="P1", title="Tee")
    _figures(store)

    html = client.get(f"/portal/stores/{store.pk}/").content.decode()

    assert _steps(html) == [
        ("connected", "done"), ("catalog", "done"), ("widget", "done"), ("click", "done"), ("order", "done"),
    ]  # fmt: skip
    assert "Seen on product, cart." in html
    assert "1 product." in html
    assert '<li data-placement="home"><span class="badge">not yet</span> home</li>' in html
    assert "First on 2026-11-20." in html


@time_machine.travel(NOW, tick=False)
def test_the_analytics_page_shows_the_rolled_up_figures_of_the_default_range(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    _figures(store)

    response = client.get(f"/portal/stores/{store.pk}/analytics")

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["analytics"].start == date(2026, 10, 24)
    assert response.context["analytics"].end == date(2026, 11, 22)
    assert '<div class="kpi" data-kpi="impressions">3</div>' in html
    assert '<div class="kpi" data-kpi="revenue">60.00</div>' in html
    assert '<span data-kpi="aov-with">60.00</span>' in html
    assert '<span data-kpi="aov-without">15.00</span>' in html
    assert 'data-chart="chart-daily-traffic"' in html
    assert 'id="chart-by-source" type="application/json"' in html
    assert "never tax or shipping" in html


@time_machine.travel(NOW, tick=False)
def test_the_csv_holds_the_same_figures_by_day_placement_source_and_arm(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    _figures(store)

    response = client.get(f"/portal/stores/{store.pk}/analytics.csv?start=2026-11-20&end=2026-11-21")
    same = client.get(f"/portal/stores/{store.pk}/analytics?start=2026-11-20&end=2026-11-21&format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="bitrecs-{store.pk}-2026-11-20-2026-11-21.csv"'
    assert same.content == response.content
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["section", "group", "impressions", "clicks"]
    table: dict[tuple[str, str], list[str]] = {(row[0], row[1]): row for row in rows[1:]}
    assert table[("total", "2026-11-20..2026-11-21")][2:12] == [
        "3", "1", "0.333333", "0.000000", "1", "1.000000", "60.00", "0", "0.00", "20000.00",
    ]  # fmt: skip
    assert table[("day", "2026-11-21")][2:4] == ["0", "0"]
    assert table[("placement", "cart")][2] == "1"
    assert table[("source", "local")][8] == "60.00"
    assert table[("orders", "with_recommendations")][6:13] == ["1", "", "60.00", "", "", "", "60.00"]
    assert table[("orders", "without_recommendations")][12] == "15.00"
    assert [key for key in table if key[0] == "day"] == [("day", "2026-11-20"), ("day", "2026-11-21")]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-11-21&end=2026-11-20", "The range ends before it starts"),
        ("start=2025-01-01&end=2026-11-20", "at most 366 days"),
        ("start=yesterday", "Enter a valid date."),
        ("start=9999-12-01&end=9999-12-31", "Pick a start date between 2000-01-01 and 2099-12-31."),
        ("start=0001-01-01&end=0001-01-02", "Pick a start date between 2000-01-01 and 2099-12-31."),
    ],
)
def test_a_bad_range_is_a_400_with_a_message(merchant: tuple[Client, Store], query: str, message: str) -> None:
    client, store = merchant

    page = client.get(f"/portal/stores/{store.pk}/analytics?{query}")
    sheet = client.get(f"/portal/stores/{store.pk}/analytics.csv?{query}")

    assert page.status_code == 400
    assert message in page.content.decode()
    assert sheet.status_code == 400
    assert message in sheet.content.decode()


def test_the_analytics_page_takes_get_only(merchant: tuple[Client, Store]) -> None:
    client, store = merchant

    assert client.post(f"/portal/stores/{store.pk}/analytics").status_code == 405
    assert client.post(f"/portal/stores/{store.pk}/analytics.csv").status_code == 405


def test_another_stores_analytics_and_experiments_are_404(merchant: tuple[Client, Store], other_store: Store) -> None:
    client, _ = merchant
    theirs = Experiment.objects.create(store=other_store, name="Theirs", weights={"network": 1}, status="running")

    assert client.get(f"/portal/stores/{other_store.pk}/analytics").status_code == 404
    assert client.get(f"/portal/stores/{other_store.pk}/analytics.csv").status_code == 404
    assert client.get(f"/portal/stores/{other_store.pk}/experiments").status_code == 404
    assert client.post(f"/portal/stores/{other_store.pk}/experiments", {"name": "x"}).status_code == 404
    assert client.post(f"/portal/stores/{other_store.pk}/experiments/{theirs.pk}/stop").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "running"


def test_another_stores_experiment_id_is_404_on_my_store(merchant: tuple[Client, Store], other_store: Store) -> None:
    client, store = merchant
    theirs = Experiment.objects.create(store=other_store, name="Theirs", weights={"network": 1}, status="running")

    assert client.get(f"/portal/stores/{store.pk}/experiments?experiment={theirs.pk}").status_code == 404
    assert client.get(f"/portal/stores/{store.pk}/experiments?experiment=abc").status_code == 404
    assert client.post(f"/portal/stores/{store.pk}/experiments/{theirs.pk}/stop").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "running"


def _start(client: Client, store: Store, **weights: Any) -> Any:
    data = {"name": "Holdout test", "default_arm": "network", **{f"weight_{k}": v for k, v in weights.items()}}
    return client.post(f"/portal/stores/{store.pk}/experiments", data)


def test_a_merchant_starts_and_stops_an_experiment(merchant: tuple[Client, Store]) -> None:
    client, store = merchant

    started = _start(client, store, network=45, local=45, holdout=10)

    experiment = Experiment.objects.get(store=store)
    assert started.status_code == 302
    assert started["Location"] == f"/portal/stores/{store.pk}/experiments?experiment={experiment.pk}"
    assert (experiment.status, experiment.weights) == ("running", {"network": 45, "local": 45, "holdout": 10})
    page = client.get(started["Location"]).content.decode()
    assert page.count('<tr data-arm="') == 3
    assert "Too early to conclude" in page

    stopped = client.post(f"/portal/stores/{store.pk}/experiments/{experiment.pk}/stop")

    experiment.refresh_from_db()
    assert stopped.status_code == 302
    assert experiment.status == "stopped"
    assert client.get(f"/portal/stores/{store.pk}/experiments/{experiment.pk}/stop").status_code == 405


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "at least one arm"),
        ({"network": -1}, "Ensure this value is greater than or equal to 0."),
        ({"network": 10001}, "Ensure this value is less than or equal to 10000."),
        ({"network": "lots"}, "Enter a whole number."),
    ],
)
def test_bad_weights_are_a_400_with_a_message_and_start_nothing(
    merchant: tuple[Client, Store], weights: dict[str, Any], message: str
) -> None:
    client, store = merchant

    response = _start(client, store, **weights)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Experiment.objects.filter(store=store).count() == 0


def test_the_report_page_shows_a_sample_ratio_mismatch(merchant: tuple[Client, Store]) -> None:
    client, store = merchant
    experiment = start_experiment(store=store, name="Split", weights={"network": 50, "local": 50})
    today = datetime.now(UTC).date()
    VisitorDay.objects.bulk_create(
        [VisitorDay(store=store, day=today, arm="network", session_id=f"n{i}", exposed=True) for i in range(300)]
        + [VisitorDay(store=store, day=today, arm="local", session_id=f"l{i}", exposed=True) for i in range(200)]
    )

    html = client.get(f"/portal/stores/{store.pk}/experiments?experiment={experiment.pk}").content.decode()

    assert 'data-srm="mismatch"' in html
    assert "χ² = 20.00, df 1" in html
