"""Shopify install: /shopify/install → the fake's authorize page → /shopify/callback, over real HTTP."""

import functools
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from merchants.exceptions import StaleRequest
from merchants.models import OAuthState, PlatformCredential, Store, StoreEvent
from merchants.services.shopify import complete_shopify_install
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db

SHOP = "bitrecs-demo.myshopify.com"
STATE_COOKIE = "shopify_oauth_state"  # the test client speaks plain HTTP, so not the __Host- name
STATE_COOKIE_SALT = "merchants.shopify.oauth_state"


def _query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _enqueued(callbacks: list) -> list[tuple[str, tuple]]:
    """(task name, args) of every Celery task enqueued with delay_on_commit in the captured callbacks."""
    return [
        (callback.func.__self__.name, callback.args)
        for callback in callbacks
        if isinstance(callback, functools.partial) and hasattr(callback.func, "__self__")
    ]


def _signed_state_cookie(state: str) -> str:
    response = HttpResponse()
    response.set_signed_cookie(STATE_COOKIE, state, salt=STATE_COOKIE_SALT)
    return response.cookies[STATE_COOKIE].value


def _unsigned_state_cookie(value: str) -> str:
    request = HttpRequest()
    request.COOKIES[STATE_COOKIE] = value
    return str(request.get_signed_cookie(STATE_COOKIE, salt=STATE_COOKIE_SALT))


def _store_count() -> tuple[int, int, int]:
    return Store.objects.count(), PlatformCredential.objects.count(), StoreEvent.objects.count()


# --- /shopify/install -------------------------------------------------------------------------------


def test_install_redirects_to_the_shops_authorize_page_with_a_state_bound_to_shop_and_browser(
    client, fake_shopify, settings
):
    # given
    query = fake_shopify.install_query(SHOP)

    # when
    response = client.get("/shopify/install", query)

    # then
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{fake_shopify.base_url}/{SHOP}/admin/oauth/authorize"
    )
    state = OAuthState.objects.get()
    assert (state.shop, state.used_at) == (SHOP, None)
    assert _query_of(response["Location"]) == {
        "client_id": "test-client-id",
        "scope": settings.SHOPIFY_SCOPES,
        "redirect_uri": f"{settings.APP_URL}/shopify/callback",
        "state": state.nonce,
    }
    cookie = response.cookies[STATE_COOKIE]
    assert _unsigned_state_cookie(cookie.value) == state.nonce
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Lax", "/")


def test_install_accepts_a_query_signed_with_the_previous_secret_during_rotation(client, fake_shopify, settings):
    # given
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-old-secret"
    query = fake_shopify.install_query(SHOP, secret="the-old-secret")

    # when
    response = client.get("/shopify/install", query)

    # then
    assert response.status_code == 302
    assert OAuthState.objects.filter(shop=SHOP).count() == 1


def _tamper_shop(fake, query):
    return {**query, "shop": "other-shop.myshopify.com"}


@pytest.mark.parametrize(
    ("make_query", "status", "error"),
    [
        pytest.param(
            lambda fake: fake.install_query(SHOP, secret="not-the-app-secret"),
            401,
            "invalid_signature",
            id="forged-hmac",
        ),
        pytest.param(
            lambda fake: {k: v for k, v in fake.install_query(SHOP).items() if k != "hmac"},
            401,
            "invalid_signature",
            id="missing-hmac",
        ),
        pytest.param(
            lambda fake: _tamper_shop(fake, fake.install_query(SHOP)), 401, "invalid_signature", id="tampered-shop"
        ),
        pytest.param(
            lambda fake: {**fake.install_query(SHOP), "hmac": "é" * 64}, 401, "invalid_signature", id="non-ascii-hmac"
        ),
        pytest.param(
            lambda fake: fake.install_query(SHOP, timestamp=int(time.time()) - 301),
            400,
            "stale_request",
            id="stale-timestamp",
        ),
        pytest.param(
            lambda fake: fake.install_query(SHOP, timestamp=int(time.time()) + 3600),
            400,
            "stale_request",
            id="future-timestamp",
        ),
        pytest.param(
            lambda fake: {
                **(q := fake.install_query(SHOP)),
                "timestamp": "soon",
                "hmac": fake.sign_query({**q, "timestamp": "soon"}),
            },
            400,
            "invalid_request",
            id="non-numeric-timestamp",
        ),
        pytest.param(lambda fake: fake.install_query("evil.com"), 400, "invalid_request", id="foreign-domain"),
        pytest.param(
            lambda fake: fake.install_query("Bitrecs-Demo.myshopify.com"), 400, "invalid_request", id="uppercase"
        ),
        pytest.param(lambda fake: fake.install_query("bitrecs-demo"), 400, "invalid_request", id="bare-name"),
        pytest.param(
            lambda fake: fake.install_query("bitrecs-demo.myshopify.com.evil.com"),
            400,
            "invalid_request",
            id="suffix-attack",
        ),
        pytest.param(
            lambda fake: fake.install_query("https://bitrecs-demo.myshopify.com"),
            400,
            "invalid_request",
            id="url-not-host",
        ),
        pytest.param(
            lambda fake: fake.install_query("bad_name.myshopify.com"), 400, "invalid_request", id="underscore"
        ),
        pytest.param(
            lambda fake: {k: v for k, v in fake.install_query(SHOP).items() if k != "shop"},
            400,
            "invalid_request",
            id="no-shop",
        ),
    ],
)
def test_install_refuses_bad_requests_and_stores_nothing(client, fake_shopify, make_query, status, error):
    # given
    query = make_query(fake_shopify)

    # when
    response = client.get("/shopify/install", query)

    # then
    assert response.status_code == status
    assert response.json()["error"] == error
    assert OAuthState.objects.count() == 0
    assert STATE_COOKIE not in response.cookies


def test_install_shows_the_embedded_app_home_with_frame_ancestors_for_an_installed_shop(client, fake_shopify):
    # given
    StoreFactory(domain=SHOP, site_key="sk_demo_home")

    # when
    response = client.get("/shopify/install", fake_shopify.install_query(SHOP, embedded="1"))

    # then
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{SHOP} https://admin.shopify.com"
    assert "X-Frame-Options" not in response
    assert "sk_demo_home" in response.content.decode()
    assert 'name="shopify-api-key" content="test-client-id"' in response.content.decode()
    assert OAuthState.objects.count() == 0


def test_under_managed_installation_an_embedded_load_of_an_unknown_shop_gets_the_app_home(client, fake_shopify):
    # when: Shopify installed the app and loads it; we hold no token yet
    response = client.get("/shopify/install", fake_shopify.install_query(SHOP, embedded="1"))

    # then: the home page, whose first API call does the token exchange (test_shopify_token_exchange.py)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{SHOP} https://admin.shopify.com"
    page = response.content.decode()
    assert '(status: <span id="status">installing</span>)' in page
    assert '<code id="site-key">(being set up)</code>' in page
    assert OAuthState.objects.count() == 0
    assert not Store.objects.exists()


def test_install_starts_oauth_for_an_embedded_load_of_an_uninstalled_shop(client, fake_shopify, settings):
    # given: an app not configured for Shopify-managed installation
    settings.SHOPIFY_MANAGED_INSTALL = False
    StoreFactory(domain=SHOP, status=Store.Status.UNINSTALLED)

    # when
    response = client.get("/shopify/install", fake_shopify.install_query(SHOP, embedded="1"))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_shopify.base_url}/{SHOP}/admin/oauth/authorize?")


# --- the whole flow ---------------------------------------------------------------------------------


def test_install_flow_activates_the_store_with_encrypted_expiring_tokens_and_enqueues_the_first_sync(
    client, fake_shopify, settings, django_capture_on_commit_callbacks
):
    # given
    start = client.get("/shopify/install", fake_shopify.install_query(SHOP))
    callback_query = fake_shopify.approve(start["Location"])

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 302
    assert response["Location"] == "https://admin.shopify.com/store/bitrecs-demo/apps/test-client-id"
    assert response.cookies[STATE_COOKIE].value == ""  # the state cookie is cleared
    store = Store.objects.get(platform=Store.Platform.SHOPIFY, domain=SHOP)
    assert store.status == Store.Status.ACTIVE
    assert store.installed_at is not None
    assert store.uninstalled_at is None

    (token_request,) = fake_shopify.token_requests
    assert token_request == {
        "shop": SHOP,
        "client_id": "test-client-id",
        "client_secret": "test-client-secret",
        "code": callback_query["code"],
        "expiring": "1",
    }
    credential = PlatformCredential.objects.get(store=store)
    shop_state = fake_shopify.shops[SHOP]
    assert credential.access_token == shop_state.access_tokens[-1]
    assert credential.refresh_token == shop_state.refresh_token
    assert credential.scopes == settings.SHOPIFY_SCOPES
    now = timezone.now()
    access_expires_at, refresh_expires_at = credential.access_token_expires_at, credential.refresh_token_expires_at
    assert access_expires_at is not None
    assert refresh_expires_at is not None
    assert now + timedelta(seconds=3500) < access_expires_at <= now + timedelta(seconds=3600)
    assert refresh_expires_at > now + timedelta(days=89)

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

    assert list(store.events.values_list("kind", flat=True)) == [StoreEvent.Kind.INSTALLED]
    assert _enqueued(callbacks) == [("catalog_sync.sync_store", (store.id,))]
    assert OAuthState.objects.get().used_at is not None


def test_callback_replay_with_the_same_state_is_refused_and_changes_nothing(client, fake_shopify):
    # given
    start = client.get("/shopify/install", fake_shopify.install_query(SHOP))
    cookie = start.cookies[STATE_COOKIE].value
    callback_query = fake_shopify.approve(start["Location"])
    assert client.get("/shopify/callback", callback_query).status_code == 302
    credential_before = PlatformCredential.objects.get()
    client.cookies[STATE_COOKIE] = cookie  # the attacker replays the browser's cookie too

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "stale_request"
    assert len(fake_shopify.token_requests) == 1
    assert PlatformCredential.objects.get().access_token == credential_before.access_token
    assert StoreEvent.objects.count() == 1


def test_reinstall_reactivates_the_uninstalled_store_and_records_reinstalled(client, install_shopify_app):
    # given
    PlatformCredentialFactory(
        store=StoreFactory(domain=SHOP, status=Store.Status.UNINSTALLED, uninstalled_at=timezone.now()),
        access_token="",
        refresh_token="",
    )

    # when
    response = install_shopify_app(SHOP)

    # then
    assert response.status_code == 302
    store = Store.objects.get(domain=SHOP)
    assert (store.status, store.uninstalled_at) == (Store.Status.ACTIVE, None)
    assert store.credential.access_token.startswith("shpat_")
    assert store.credential.refresh_token.startswith("shprt_")
    event = store.events.get()
    assert (event.kind, event.detail["previous_status"]) == (StoreEvent.Kind.REINSTALLED, Store.Status.UNINSTALLED)


# --- /shopify/callback refusals -----------------------------------------------------------------------


@pytest.fixture
def started(client, fake_shopify):
    """An install started by this browser: (state cookie value, the callback query Shopify would send)."""
    start = client.get("/shopify/install", fake_shopify.install_query(SHOP))
    return start.cookies[STATE_COOKIE].value, fake_shopify.approve(start["Location"])


def _resigned(fake, query, **changes):
    changed = {key: value for key, value in {**query, **changes}.items() if value is not None and key != "hmac"}
    return {**changed, "hmac": fake.sign_query(changed)}


def test_callback_without_the_state_cookie_is_refused(client, fake_shopify, started):
    # given
    _, callback_query = started
    client.cookies.pop(STATE_COOKIE)  # another browser

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])
    assert OAuthState.objects.get().used_at is None


def test_callback_with_a_cookie_for_another_state_is_refused(client, fake_shopify, started):
    # given
    _, callback_query = started
    client.cookies[STATE_COOKIE] = _signed_state_cookie("another-install-state")

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


def test_callback_with_a_forged_cookie_signature_is_refused(client, fake_shopify, started):
    # given
    _, callback_query = started
    client.cookies[STATE_COOKIE] = callback_query["state"] + ":forged-signature"

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 400
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


def test_callback_with_a_state_issued_for_another_shop_is_refused(client, fake_shopify, started):
    # given
    _, callback_query = started
    query = _resigned(fake_shopify, callback_query, shop="another-shop.myshopify.com")

    # when
    response = client.get("/shopify/callback", query)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


def test_callback_with_an_expired_state_is_refused(client, fake_shopify, time_machine):
    # given
    time_machine.move_to(timezone.now())
    start = client.get("/shopify/install", fake_shopify.install_query(SHOP))
    time_machine.shift(timedelta(minutes=11))
    callback_query = fake_shopify.approve(start["Location"])  # signed now, so only the state is old

    # when
    response = client.get("/shopify/callback", callback_query)

    # then: the signed cookie has expired with the state
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


def test_complete_install_refuses_an_expired_state_even_with_a_matching_browser_state(
    client, fake_shopify, time_machine
):
    # given
    time_machine.move_to(timezone.now())
    start = client.get("/shopify/install", fake_shopify.install_query(SHOP))
    time_machine.shift(timedelta(minutes=11))
    callback_query = fake_shopify.approve(start["Location"])

    # when
    with pytest.raises(StaleRequest) as raised:
        complete_shopify_install(
            shop=SHOP, state=callback_query["state"], browser_state=callback_query["state"], code=callback_query["code"]
        )

    # then
    assert raised.value.message == "The state has expired; start the installation again from the Shopify admin."
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"hmac": "0" * 64}, 401, "invalid_signature", id="forged-hmac"),
        pytest.param({"hmac": None}, 401, "invalid_signature", id="missing-hmac"),
        pytest.param({"shop": "evil.com"}, 400, "invalid_request", id="foreign-shop"),
        pytest.param({"timestamp": "1700000000"}, 400, "stale_request", id="stale-timestamp"),
        pytest.param({"state": None}, 400, "invalid_request", id="missing-state"),
    ],
)
def test_callback_refuses_tampered_queries_and_leaves_the_state_usable(
    client, fake_shopify, started, change, status, error
):
    # given
    _, callback_query = started
    if "hmac" in change:
        query = {key: value for key, value in {**callback_query, **change}.items() if value is not None}
    else:
        query = _resigned(fake_shopify, callback_query, **change)

    # when
    response = client.get("/shopify/callback", query)

    # then
    assert response.status_code == status
    assert response.json()["error"] == error
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])
    assert client.get("/shopify/callback", callback_query).status_code == 302  # the real callback still works


def test_callback_without_a_code_is_refused(client, fake_shopify, started):
    # given
    _, callback_query = started

    # when
    response = client.get("/shopify/callback", _resigned(fake_shopify, callback_query, code=None))

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (_store_count(), fake_shopify.token_requests) == ((0, 0, 0), [])


def test_callback_with_a_code_shopify_does_not_know_is_rejected_and_stores_nothing(client, fake_shopify, started):
    # given
    _, callback_query = started

    # when
    response = client.get("/shopify/callback", _resigned(fake_shopify, callback_query, code="made-up-code"))

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "platform_rejected"
    assert "The authorization code was not found or was already used" in response.json()["detail"]
    assert _store_count() == (0, 0, 0)


@pytest.mark.parametrize(
    ("status", "error", "http_status"),
    [
        (400, "platform_rejected", 400),
        (401, "platform_rejected", 400),
        (500, "platform_unavailable", 502),
        (503, "platform_unavailable", 502),
    ],
)
def test_callback_token_endpoint_errors_store_nothing(client, fake_shopify, started, status, error, http_status):
    # given
    _, callback_query = started
    fake_shopify.fail_next_token_request(status=status)

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == http_status
    assert response.json()["error"] == error
    assert len(fake_shopify.token_requests) == 1
    assert _store_count() == (0, 0, 0)


def test_callback_token_endpoint_timeout_is_unavailable_and_stores_nothing(client, fake_shopify, started, settings):
    # given
    _, callback_query = started
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 0.2
    fake_shopify.token_delay_seconds = 1.0

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 502
    assert response.json() == {
        "error": "platform_unavailable",
        "detail": "Shopify's token endpoint did not answer within 0.2 s.",
    }
    assert _store_count() == (0, 0, 0)


def test_callback_refuses_a_grant_missing_required_scopes(client, fake_shopify, started, settings):
    # given
    _, callback_query = started
    settings.SHOPIFY_SCOPES = "read_products,read_orders"
    fake_shopify.granted_scope = "read_products"

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "platform_rejected"
    assert "read_orders" in response.json()["detail"]
    assert _store_count() == (0, 0, 0)


def test_callback_accepts_write_scopes_in_place_of_read_scopes(client, fake_shopify, started, settings):
    # given
    _, callback_query = started
    settings.SHOPIFY_SCOPES = "read_products"
    fake_shopify.granted_scope = "write_products"

    # when
    response = client.get("/shopify/callback", callback_query)

    # then
    assert response.status_code == 302
    assert Store.objects.get(domain=SHOP).credential.scopes == "write_products"
