"""Expiring offline tokens: refresh before expiry, rotation, the per-store lock, and re-authorisation."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from merchants.clients.shopify import ShopifyOAuthClient, ShopifyTokenRejected
from merchants.exceptions import PlatformRejected, PlatformUnavailable
from merchants.models import PlatformCredential, Store, StoreEvent
from merchants.services.shopify import get_shopify_access_token
from merchants.tasks import refresh_expiring_tokens_task

pytestmark = pytest.mark.django_db

SHOP = "refresh-demo.myshopify.com"


@pytest.fixture
def store(install_shopify_app, time_machine):
    """A store installed through OAuth just now, holding a 60-minute token and its refresh token."""
    time_machine.move_to(timezone.now())
    assert install_shopify_app(SHOP).status_code == 302
    return Store.objects.get(domain=SHOP)


def _refresh_events(store: Store) -> int:
    return store.events.filter(kind=StoreEvent.Kind.TOKEN_REFRESHED).count()


def test_a_fresh_token_is_returned_without_calling_shopify(store, fake_shopify, time_machine):
    # given
    time_machine.shift(timedelta(minutes=49))  # expires in 11 min, the margin is 10

    # when
    token = get_shopify_access_token(store=store)

    # then
    assert token == store.credential.access_token
    assert fake_shopify.refresh_requests() == []


def test_a_token_expiring_within_the_margin_is_refreshed_and_the_refresh_token_rotated(
    store, fake_shopify, time_machine
):
    # given
    before = PlatformCredential.objects.get(store=store)
    time_machine.shift(timedelta(minutes=51))

    # when
    token = get_shopify_access_token(store=store)

    # then
    after = PlatformCredential.objects.get(store=store)
    assert token == after.access_token == fake_shopify.shops[SHOP].access_tokens[-1]
    assert token != before.access_token
    assert after.refresh_token == fake_shopify.shops[SHOP].refresh_token != before.refresh_token
    now = timezone.now()
    assert after.access_token_expires_at is not None
    assert now + timedelta(seconds=3590) <= after.access_token_expires_at <= now + timedelta(seconds=3600)
    assert fake_shopify.refresh_requests() == [
        {
            "shop": SHOP,
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
            "grant_type": "refresh_token",
            "refresh_token": before.refresh_token,
        }
    ]
    assert _refresh_events(store) == 1
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE


def test_the_first_refresh_token_is_dead_once_its_successor_has_been_used(store, fake_shopify, time_machine, settings):
    # given
    first_refresh_token = store.credential.refresh_token
    time_machine.shift(timedelta(minutes=51))
    get_shopify_access_token(store=store)
    time_machine.shift(timedelta(minutes=51))
    get_shopify_access_token(store=store)  # spends the second refresh token
    client = ShopifyOAuthClient(
        token_url=f"{fake_shopify.base_url}/{SHOP}/admin/oauth/access_token",
        client_id=settings.SHOPIFY_API_KEY,
        client_secret=settings.SHOPIFY_API_SECRET,
        timeout=5,
    )

    # when
    with pytest.raises(ShopifyTokenRejected) as raised:
        client.refresh(refresh_token=first_refresh_token)

    # then
    assert raised.value.upstream_status == 400
    assert len(fake_shopify.refresh_requests()) == 3
    assert _refresh_events(store) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_store_spend_the_refresh_token_once(
    install_shopify_app, fake_shopify, time_machine
):
    # given: a worker is mid-refresh (Shopify has not answered yet) when a second worker needs the token
    time_machine.move_to(timezone.now())
    install_shopify_app(SHOP)
    store = Store.objects.get(domain=SHOP)
    old_token = store.credential.access_token
    time_machine.shift(timedelta(minutes=51))
    fake_shopify.hold_refresh = threading.Event()
    results: dict[str, str] = {}

    def worker(name: str) -> None:
        try:
            results[name] = get_shopify_access_token(store=Store.objects.get(id=store.id))
        finally:
            connections.close_all()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    assert fake_shopify.refresh_received.wait(timeout=5)
    second = threading.Thread(target=worker, args=("second",))

    # when
    second.start()
    time.sleep(0.3)  # the second worker reads the expiring token and waits for the row lock
    fake_shopify.hold_refresh.set()
    first.join(timeout=10)
    second.join(timeout=10)

    # then
    assert results["first"] == results["second"] == PlatformCredential.objects.get(store=store).access_token
    assert results["first"] != old_token
    assert len(fake_shopify.refresh_requests()) == 1
    assert _refresh_events(store) == 1


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_refresh_marks_the_store_needs_reauth(store, fake_shopify, time_machine, status):
    # given
    credential_before = PlatformCredential.objects.get(store=store)
    fake_shopify.fail_next_token_request(
        status=status,
        grant_type="refresh_token",
        body={"error": "invalid_grant", "error_description": "The refresh token was revoked"},
    )
    time_machine.shift(timedelta(minutes=51))

    # when
    with pytest.raises(PlatformRejected) as raised:
        get_shopify_access_token(store=store)

    # then
    assert raised.value.message == (
        f"Shopify refused the token request ({status}): invalid_grant - The refresh token was revoked"
    )
    store.refresh_from_db()
    assert store.status == Store.Status.NEEDS_REAUTH
    event = store.events.get(kind=StoreEvent.Kind.REAUTH_REQUIRED)
    assert event.detail == {"reason": raised.value.message}
    assert PlatformCredential.objects.get(store=store).refresh_token == credential_before.refresh_token
    assert _refresh_events(store) == 0


def test_a_store_needing_reauth_gets_no_token_and_shopify_is_not_called_again(store, fake_shopify, time_machine):
    # given
    fake_shopify.fail_next_token_request(status=401, grant_type="refresh_token")
    time_machine.shift(timedelta(minutes=51))
    with pytest.raises(PlatformRejected):
        get_shopify_access_token(store=store)

    # when
    with pytest.raises(PlatformRejected) as raised:
        get_shopify_access_token(store=store)

    # then
    assert raised.value.message == (
        f"{SHOP} is not active (Needs re-authorisation); the merchant must open the app from the Shopify admin again."
    )
    assert len(fake_shopify.refresh_requests()) == 1
    assert store.events.filter(kind=StoreEvent.Kind.REAUTH_REQUIRED).count() == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_token_endpoint_leaves_the_store_active_and_the_next_call_refreshes(
    store, fake_shopify, time_machine, status
):
    # given
    credential_before = PlatformCredential.objects.get(store=store)
    fake_shopify.fail_next_token_request(status=status, grant_type="refresh_token")
    time_machine.shift(timedelta(minutes=51))

    # when
    with pytest.raises(PlatformUnavailable):
        get_shopify_access_token(store=store)
    token = get_shopify_access_token(store=store)

    # then
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE
    assert token != credential_before.access_token
    assert [form["refresh_token"] for form in fake_shopify.refresh_requests()] == [credential_before.refresh_token] * 2
    assert store.events.filter(kind=StoreEvent.Kind.REAUTH_REQUIRED).count() == 0


def test_an_expired_refresh_token_marks_the_store_needs_reauth_without_calling_shopify(
    store, fake_shopify, time_machine
):
    # given
    PlatformCredential.objects.filter(store=store).update(
        refresh_token_expires_at=timezone.now() + timedelta(minutes=5)
    )
    time_machine.shift(timedelta(minutes=51))

    # when
    with pytest.raises(PlatformRejected):
        get_shopify_access_token(store=store)

    # then
    assert Store.objects.get(id=store.id).status == Store.Status.NEEDS_REAUTH
    assert fake_shopify.refresh_requests() == []


def test_refresh_expiring_tokens_task_refreshes_only_active_stores_expiring_soon(
    install_shopify_app, fake_shopify, time_machine
):
    # given
    time_machine.move_to(timezone.now())
    for shop in ("expiring-a.myshopify.com", "expiring-b.myshopify.com", "reauth.myshopify.com"):
        install_shopify_app(shop)
    Store.objects.filter(domain="reauth.myshopify.com").update(status=Store.Status.NEEDS_REAUTH)
    time_machine.shift(timedelta(minutes=30))
    install_shopify_app("fresh.myshopify.com")
    time_machine.shift(timedelta(minutes=21))
    tokens_before = dict(PlatformCredential.objects.values_list("store__domain", "access_token"))
    fake_shopify.fail_next_token_request(status=500, grant_type="refresh_token")  # the first store's refresh fails

    # when
    refreshed = refresh_expiring_tokens_task.delay().get()

    # then
    assert refreshed == 1
    tokens_after = dict(PlatformCredential.objects.values_list("store__domain", "access_token"))
    changed = sorted(shop for shop, token in tokens_after.items() if token != tokens_before[shop])
    assert changed == ["expiring-b.myshopify.com"]
    assert [form["shop"] for form in fake_shopify.refresh_requests()] == [
        "expiring-a.myshopify.com",
        "expiring-b.myshopify.com",
    ]
