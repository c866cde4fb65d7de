"""Shopify-managed installation: the embedded admin's first API call exchanges its ID token for an offline token.

Everything runs over real HTTP against the fake Shopify (bitrecs_site.testing.fake_shopify).
"""

import functools
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from merchants.models import PlatformCredential, Store, StoreEvent
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = [
    pytest.mark.django_db,
    # The test settings' app secret is shorter than a real one (32 bytes); PyJWT warns about that.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SHOP = "exchange-demo.myshopify.com"
URL = "/shopify/admin/api/store"
RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


def _exchange_form(subject_token: str) -> dict[str, str]:
    """What Shopify's token endpoint must receive for a token exchange, as the fake records it."""
    return {
        "shop": SHOP,
        "client_id": "test-client-id",
        "client_secret": "test-client-secret",
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "expiring": "1",
    }


def _enqueued(callbacks: list) -> list[tuple[str, tuple]]:
    """(task name, args) of every Celery task enqueued with delay_on_commit in the captured callbacks."""
    return [
        (callback.func.__self__.name, callback.args)
        for callback in callbacks
        if isinstance(callback, functools.partial) and hasattr(callback.func, "__self__")
    ]


def _stored() -> tuple[int, int, int]:
    return Store.objects.count(), PlatformCredential.objects.count(), StoreEvent.objects.count()


@pytest.fixture
def call_api(client, fake_shopify, django_capture_on_commit_callbacks):
    """GET the embedded store endpoint with `token`; returns (response, tasks enqueued on commit)."""

    def call(token: str):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
        return response, _enqueued(callbacks)

    return call


# --- installing and reusing -------------------------------------------------------------------------


def test_the_first_call_for_an_unknown_shop_installs_it_with_encrypted_expiring_tokens(
    call_api, fake_shopify, settings
):
    # given
    id_token = fake_shopify.id_token(SHOP)

    # when
    response, enqueued = call_api(id_token)

    # then
    assert response.status_code == 200
    store = Store.objects.get(platform=Store.Platform.SHOPIFY, domain=SHOP)
    assert response.json() == {"shop": SHOP, "site_key": store.site_key, "status": "active", "settings": {}}
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{SHOP} https://admin.shopify.com"
    assert (store.status, store.uninstalled_at) == (Store.Status.ACTIVE, None)
    assert store.installed_at is not None

    assert fake_shopify.token_requests == [_exchange_form(id_token)]
    credential = PlatformCredential.objects.get(store=store)
    assert credential.access_token == fake_shopify.shops[SHOP].access_tokens[-1]
    assert credential.refresh_token == fake_shopify.shops[SHOP].refresh_token
    assert credential.scopes == settings.SHOPIFY_SCOPES
    now = timezone.now()
    assert credential.access_token_expires_at is not None
    assert credential.refresh_token_expires_at is not None
    assert now + timedelta(seconds=3500) < credential.access_token_expires_at <= now + timedelta(seconds=3600)
    assert credential.refresh_token_expires_at > now + timedelta(days=89)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT access_token, refresh_token FROM {PlatformCredential._meta.db_table} WHERE store_id = %s",  # noqa: S608
            [store.id],
        )
        raw_access, raw_refresh = cursor.fetchone()
    assert raw_access
    assert raw_refresh
    assert credential.access_token not in raw_access
    assert credential.refresh_token not in raw_refresh

    event = store.events.get()
    assert (event.kind, event.detail) == (
        StoreEvent.Kind.INSTALLED,
        {"by": "shopify_token_exchange", "scopes": settings.SHOPIFY_SCOPES},
    )
    assert enqueued == [("catalog_sync.sync_store", (store.id,))]


def test_later_calls_reuse_the_stored_token_without_exchanging_again(call_api, fake_shopify, time_machine):
    # given
    time_machine.move_to(timezone.now())
    call_api(fake_shopify.id_token(SHOP))
    credential_before = PlatformCredential.objects.get()

    # when: a call a minute later, and one after the access token expired (a refresh, not an exchange, renews it)
    time_machine.shift(timedelta(minutes=1))
    soon, enqueued_soon = call_api(fake_shopify.id_token(SHOP))
    time_machine.shift(timedelta(minutes=70))
    later, enqueued_later = call_api(fake_shopify.id_token(SHOP))

    # then
    assert (soon.status_code, later.status_code) == (200, 200)
    assert len(fake_shopify.exchange_requests()) == 1
    assert len(fake_shopify.token_requests) == 1
    assert PlatformCredential.objects.get().access_token == credential_before.access_token
    assert list(StoreEvent.objects.values_list("kind", flat=True)) == [StoreEvent.Kind.INSTALLED]
    assert enqueued_soon == enqueued_later == []


def test_a_reinstall_after_uninstall_reactivates_the_same_store(
    call_api, client, fake_shopify, django_capture_on_commit_callbacks, settings
):
    # given: installed by exchange, then the app/uninstalled webhook cleared the tokens
    call_api(fake_shopify.id_token(SHOP))
    store = Store.objects.get(domain=SHOP)
    with django_capture_on_commit_callbacks(execute=True):
        uninstall = fake_shopify.deliver_webhook(client, topic="app/uninstalled", shop=SHOP, payload={"id": 1})
    assert uninstall.status_code == 200
    store.refresh_from_db()
    assert store.status == Store.Status.UNINSTALLED
    assert store.credential.access_token == ""

    # when: Shopify reinstalled the app and the merchant opens it
    response, enqueued = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 200
    assert response.json()["site_key"] == store.site_key
    store.refresh_from_db()
    assert (store.status, store.uninstalled_at) == (Store.Status.ACTIVE, None)
    assert store.credential.access_token == fake_shopify.shops[SHOP].access_tokens[-1]
    assert store.credential.refresh_token == fake_shopify.shops[SHOP].refresh_token
    assert len(fake_shopify.exchange_requests()) == 2
    event = store.events.first()
    assert event is not None
    assert (event.kind, event.detail) == (
        StoreEvent.Kind.REINSTALLED,
        {"by": "shopify_token_exchange", "scopes": settings.SHOPIFY_SCOPES, "previous_status": "uninstalled"},
    )
    assert enqueued == [("catalog_sync.sync_store", (store.id,))]
    assert Store.objects.count() == 1


@pytest.mark.parametrize(
    "credential_state",
    [
        pytest.param({"status": Store.Status.NEEDS_REAUTH}, id="needs-reauth"),
        pytest.param({"refresh_token_expires_at": timedelta(minutes=-1)}, id="refresh-token-expired"),
        pytest.param({"access_token": ""}, id="no-access-token"),
        pytest.param({"status": Store.Status.PENDING, "credential": False}, id="pending-without-credential"),
    ],
)
def test_a_store_without_a_usable_token_is_reauthorised_by_exchange(call_api, fake_shopify, credential_state):
    # given
    now = timezone.now()
    store = StoreFactory.create(domain=SHOP, status=credential_state.get("status", Store.Status.ACTIVE))
    if credential_state.get("credential", True):
        PlatformCredentialFactory(
            store=store,
            access_token=credential_state.get("access_token", "shpat_old"),
            access_token_expires_at=now - timedelta(minutes=5),
            refresh_token="shprt_old",
            refresh_token_expires_at=now + credential_state.get("refresh_token_expires_at", timedelta(days=30)),
        )

    # when
    response, enqueued = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 200
    store.refresh_from_db()
    assert store.status == Store.Status.ACTIVE
    assert store.credential.access_token == fake_shopify.shops[SHOP].access_tokens[-1]
    assert len(fake_shopify.exchange_requests()) == 1
    assert store.events.get().kind == StoreEvent.Kind.REINSTALLED
    assert enqueued == [("catalog_sync.sync_store", (store.id,))]


# --- refusals: nothing is stored ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_options", "detail_part"),
    [
        pytest.param({"secret": "not-the-app-secret"}, "Signature verification failed", id="forged"),
        pytest.param({"lifetime": -11}, "Signature has expired", id="expired"),
        pytest.param({"aud": "another-app"}, "Audience doesn't match", id="another-app"),
    ],
)
def test_an_invalid_id_token_for_an_unknown_shop_is_refused_with_401_before_any_exchange(
    call_api, fake_shopify, token_options, detail_part
):
    # when
    response, enqueued = call_api(fake_shopify.id_token(SHOP, **token_options))

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert detail_part in response.json()["detail"]
    assert response[RETRY_HEADER] == "1"
    assert fake_shopify.token_requests == []
    assert _stored() == (0, 0, 0)
    assert enqueued == []


def test_an_id_token_shopify_refuses_is_a_401_and_stores_nothing(call_api, fake_shopify, settings):
    # given: signed with the previous secret, which this app still accepts during a rotation but Shopify does not
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-old-secret"
    id_token = fake_shopify.id_token(SHOP, secret="the-old-secret")

    # when
    response, enqueued = call_api(id_token)

    # then
    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "Shopify's token exchange refused the ID token: Shopify refused the token request (400): "
        "invalid_subject_token - Token exchange cannot be performed due to an invalid subject token.",
    }
    assert response[RETRY_HEADER] == "1"
    assert fake_shopify.token_requests == [_exchange_form(id_token)]
    assert _stored() == (0, 0, 0)
    assert enqueued == []


def test_an_exchange_refused_because_the_app_is_not_installed_is_a_403_and_stores_nothing(call_api, fake_shopify):
    # given
    fake_shopify.uninstall_app(SHOP)

    # when
    response, enqueued = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 403
    assert response.json() == {
        "error": "install_refused",
        "detail": f"Shopify would not give the app an access token for {SHOP}: Shopify refused the token request "
        "(400): invalid_client - The app is not installed on this shop.",
    }
    assert RETRY_HEADER not in response
    assert len(fake_shopify.exchange_requests()) == 1
    assert _stored() == (0, 0, 0)
    assert enqueued == []


def test_an_uninstalled_store_stays_uninstalled_when_shopify_refuses_the_exchange(call_api, fake_shopify):
    # given
    store = StoreFactory.create(domain=SHOP, status=Store.Status.UNINSTALLED, uninstalled_at=timezone.now())
    PlatformCredentialFactory(store=store, access_token="", refresh_token="")
    fake_shopify.uninstall_app(SHOP)

    # when
    response, _ = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 403
    store.refresh_from_db()
    assert store.status == Store.Status.UNINSTALLED
    assert store.credential.access_token == ""
    assert store.events.count() == 0


def test_a_grant_missing_required_scopes_is_a_403_and_stores_nothing(call_api, fake_shopify, settings):
    # given
    settings.SHOPIFY_SCOPES = "read_products,read_orders"
    fake_shopify.granted_scope = "read_products"

    # when
    response, _ = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 403
    assert response.json()["error"] == "install_refused"
    assert "read_orders" in response.json()["detail"]
    assert _stored() == (0, 0, 0)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_token_endpoint_is_a_502_and_the_next_call_installs(call_api, fake_shopify, status):
    # given
    fake_shopify.fail_next_token_request(status=status)

    # when
    failed, enqueued = call_api(fake_shopify.id_token(SHOP))
    retried, _ = call_api(fake_shopify.id_token(SHOP))

    # then
    assert failed.status_code == 502
    assert failed.json()["error"] == "platform_unavailable"
    assert enqueued == []
    assert retried.status_code == 200
    assert len(fake_shopify.exchange_requests()) == 2
    assert Store.objects.get().status == Store.Status.ACTIVE


def test_a_token_endpoint_timeout_is_a_502_and_stores_nothing(call_api, fake_shopify, settings):
    # given
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 0.2
    fake_shopify.token_delay_seconds = 1.0

    # when
    response, _ = call_api(fake_shopify.id_token(SHOP))

    # then
    assert response.status_code == 502
    assert response.json() == {
        "error": "platform_unavailable",
        "detail": "Shopify's token endpoint did not answer within 0.2 s.",
    }
    assert _stored() == (0, 0, 0)
