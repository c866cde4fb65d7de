"""WooCommerce onboarding end to end: connect → /wc-auth/v1/authorize on a fake store → callback → active store."""

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from bitrecs_site.testing.fake_woocommerce import Approval, AuthorizeRefused, DjangoClientTransport, FakeWooCommerce
from merchants.models import PlatformCredential, Store, StoreEvent, WooCommerceInstall
from merchants.services.woocommerce import build_woocommerce_client, get_store_api_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("woocommerce_settings")]


def connect(client, store_url: str):
    return client.get("/woocommerce/connect", {"store_url": store_url})


def connect_and_approve(client, fake: FakeWooCommerce, transport: DjangoClientTransport) -> Approval:
    response = connect(client, fake.base_url)
    assert response.status_code == 302
    return fake.approve(response["Location"], transport=transport)


def post_callback(client, body: dict | bytes):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", "/woocommerce/callback", data, content_type="application/json;charset=UTF-8")


def nothing_stored() -> bool:
    return not Store.objects.exists() and not PlatformCredential.objects.exists() and not StoreEvent.objects.exists()


def raw_credential_row(store: Store) -> tuple:
    with connection.cursor() as cursor:
        table = PlatformCredential._meta.db_table
        sql = f"SELECT consumer_key, consumer_secret, webhook_secret FROM {table} WHERE store_id = %s"  # noqa: S608
        cursor.execute(sql, [store.id])
        return cursor.fetchone()


# Connect.


def test_connect_redirects_to_the_store_authorize_endpoint_with_the_five_parameters(client, fake_woocommerce):
    # when
    response = connect(client, fake_woocommerce.base_url + "/")

    # then
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}" == fake_woocommerce.base_url + "/wc-auth/v1/authorize"
    )
    install = WooCommerceInstall.objects.get()
    assert parse_qs(location.query) == {
        "app_name": ["Bitrecs"],
        "scope": ["read"],
        "user_id": [install.user_id],
        "return_url": ["https://bitrecs.test/woocommerce/return"],
        "callback_url": ["https://bitrecs.test/woocommerce/callback"],
    }
    assert install.store_url == fake_woocommerce.base_url
    assert install.completed_at is None
    assert len(install.user_id) == 43


def test_connect_gives_each_install_its_own_unguessable_user_id(client):
    # when
    connect(client, "https://shop.example")
    connect(client, "https://shop.example")

    # then
    first, second = WooCommerceInstall.objects.order_by("id")
    assert first.user_id != second.user_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Shop.Example.com/", "https://shop.example.com"),
        ("  https://shop.example.com:443//  ", "https://shop.example.com"),
        ("https://shop.example.com/store/", "https://shop.example.com/store"),
        ("https://shop.example.com:8443/wp", "https://shop.example.com:8443/wp"),
        ("HTTPS://www.shop.example", "https://www.shop.example"),
        ("https://bücher.example/", "https://xn--bcher-kva.example"),
    ],
)
def test_connect_normalises_the_store_url(client, raw, expected):
    # when
    response = connect(client, raw)

    # then
    assert response.status_code == 302
    assert WooCommerceInstall.objects.get().store_url == expected
    assert response["Location"].startswith(expected + "/wc-auth/v1/authorize?")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "shop.example.com",
        "ftp://shop.example.com",
        "javascript:alert(1)",
        "https://",
        "https://user:pass@shop.example.com",
        "https://shop.example.com/?page=1",
        "https://shop.example.com/?",
        "https://shop.example.com/#top",
        "https://shop_example.com",
        "https://shop..example.com",
        "https://-shop.example.com",
        "https://shop.example.com:99999",
        "https://shop.example.com/a b",
        "https://shop.example.com/../etc",
        "https://shop.example.com\\@evil.example",
        "https://" + "a" * 500 + ".example",
    ],
)
def test_connect_refuses_a_bad_store_url_and_stores_nothing(client, raw):
    # when
    response = connect(client, raw)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not WooCommerceInstall.objects.exists()


@pytest.mark.parametrize(
    "raw", ["http://shop.example.com", "https://127.0.0.1", "https://10.0.0.5:8080", "https://localhost"]
)
def test_connect_outside_local_mode_requires_https_and_a_public_host_name(client, settings, raw):
    # given
    settings.LOCAL_MODE = False

    # when
    response = connect(client, raw)

    # then
    assert response.status_code == 400
    assert not WooCommerceInstall.objects.exists()


def test_connect_in_local_mode_allows_plain_http(client, settings):
    # given
    settings.LOCAL_MODE = True

    # when
    response = connect(client, "http://localhost:8080")

    # then
    assert response.status_code == 302
    assert WooCommerceInstall.objects.get().store_url == "http://localhost:8080"


def test_connect_answers_405_to_a_post(client):
    assert client.post("/woocommerce/connect", {"store_url": "https://shop.example"}).status_code == 405


def test_the_fake_store_refuses_an_http_callback_url_like_woocommerce(client, fake_woocommerce, settings):
    # given
    settings.APP_URL = "http://127.0.0.1:8000"
    location = connect(client, fake_woocommerce.base_url)["Location"]

    # when / then
    with pytest.raises(AuthorizeRefused, match="The callback_url needs to be over SSL"):
        fake_woocommerce.approve(location, transport=lambda *args: 200)


# Callback: the happy path.


def test_the_callback_tests_the_keys_with_oauth1_against_the_store_before_trusting_them(
    client, fake_woocommerce, woocommerce_transport
):
    # when
    connect_and_approve(client, fake_woocommerce, woocommerce_transport)

    # then
    calls = [r for r in fake_woocommerce.requests if r.path.startswith("/wp-json/")]
    assert [c.path for c in calls] == ["/wp-json/wc/v3/system_status"]
    assert calls[0].query["oauth_signature_method"] == "HMAC-SHA256"
    assert calls[0].query["oauth_consumer_key"] == PlatformCredential.objects.get().consumer_key
    assert "authorization" not in calls[0].headers
    assert "consumer_secret" not in calls[0].query


def test_the_return_page_confirms_the_connection(client, fake_woocommerce, woocommerce_transport):
    # given
    approval = connect_and_approve(client, fake_woocommerce, woocommerce_transport)

    # when
    response = client.get(approval.return_location)

    # then
    assert response.status_code == 200
    assert b'data-outcome="connected"' in response.content
    assert Store.objects.get().site_key.encode() in response.content


def test_the_return_page_after_a_denial_says_nothing_was_shared(client, fake_woocommerce):
    # given
    location = fake_woocommerce.deny(connect(client, fake_woocommerce.base_url)["Location"])

    # when
    response = client.get(location)

    # then
    assert response.status_code == 200
    assert b'data-outcome="denied"' in response.content
    assert nothing_stored()


def test_the_return_page_for_an_unknown_user_id_is_404(client):
    response = client.get("/woocommerce/return", {"success": "1", "user_id": "nope"})

    assert response.status_code == 404
    assert b'data-outcome="unknown"' in response.content


# Callback: reinstall.


def test_reinstalling_reactivates_the_same_store_with_the_new_keys(client, fake_woocommerce, woocommerce_transport):
    # given: installed, then uninstalled
    first = connect_and_approve(client, fake_woocommerce, woocommerce_transport)
    store = Store.objects.get()
    site_key = store.site_key
    webhook_secret = store.credential.webhook_secret
    Store.objects.filter(id=store.id).update(status=Store.Status.UNINSTALLED, uninstalled_at=timezone.now())
    fake_woocommerce.revoke_key(first.key.consumer_key)

    # when
    second = connect_and_approve(client, fake_woocommerce, woocommerce_transport)

    # then
    assert second.callback_status == 200
    store = Store.objects.get()
    assert store.site_key == site_key
    assert store.status == Store.Status.ACTIVE
    assert store.uninstalled_at is None
    credential = PlatformCredential.objects.get()
    assert credential.consumer_key == second.key.consumer_key
    assert credential.consumer_secret == second.key.consumer_secret
    assert credential.key_id == str(second.key.key_id)
    assert credential.webhook_secret == webhook_secret
    assert list(store.events.order_by("id").values_list("kind", flat=True)) == [
        StoreEvent.Kind.INSTALLED,
        StoreEvent.Kind.REINSTALLED,
    ]
    assert WooCommerceInstall.objects.filter(completed_at__isnull=False, store=store).count() == 2


# Callback: refusals. WooCommerce deletes the key when the answer is not 200; nothing is stored here.


def test_a_replayed_callback_is_refused_and_changes_nothing(client, fake_woocommerce, woocommerce_transport):
    # given
    approval = connect_and_approve(client, fake_woocommerce, woocommerce_transport)
    credential_before = PlatformCredential.objects.values().get()
    replay = json.loads(approval.callback_body) | {
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
    }

    # when
    response = post_callback(client, replay)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "stale_request"
    assert PlatformCredential.objects.values().get() == credential_before
    assert StoreEvent.objects.count() == 1


def test_a_callback_for_an_unknown_user_id_is_refused(client, fake_woocommerce):
    # given
    key = fake_woocommerce.issue_key()

    # when
    response = post_callback(
        client,
        {
            "key_id": key.key_id,
            "user_id": "not-an-install",
            "consumer_key": key.consumer_key,
            "consumer_secret": key.consumer_secret,
            "key_permissions": "read",
        },
    )

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert nothing_stored()


def test_a_callback_for_an_expired_install_is_refused(client, fake_woocommerce, woocommerce_transport, settings):
    # given
    location = connect(client, fake_woocommerce.base_url)["Location"]
    WooCommerceInstall.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS + 1)
    )

    # when
    approval = fake_woocommerce.approve(location, transport=woocommerce_transport)

    # then
    assert approval.callback_status == 400
    assert woocommerce_transport.responses[0].json()["error"] == "stale_request"
    assert approval.return_location is None
    assert approval.key.consumer_key not in fake_woocommerce.keys
    assert nothing_stored()
    assert WooCommerceInstall.objects.get().completed_at is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consumer_key": "ck_short"}, "consumer_key"),
        ({"consumer_key": "xx_" + "a" * 40}, "consumer_key"),
        ({"consumer_secret": "cs_" + "g" * 40}, "consumer_secret"),
        ({"consumer_secret": None}, "consumer_secret"),
        ({"key_id": "abc"}, "key_id"),
        ({"key_id": 0}, "key_id"),
        ({"key_permissions": "write"}, "key_permissions"),
        ({"user_id": 42}, "user_id"),
    ],
)
def test_a_callback_with_a_malformed_field_is_refused(client, fake_woocommerce, change, field):
    # given
    location = connect(client, fake_woocommerce.base_url)["Location"]
    user_id = parse_qs(urlsplit(location).query)["user_id"][0]
    key = fake_woocommerce.issue_key()
    body = {
        "key_id": key.key_id,
        "user_id": user_id,
        "consumer_key": key.consumer_key,
        "consumer_secret": key.consumer_secret,
        "key_permissions": "read",
    } | change

    # when
    response = post_callback(client, body)

    # then
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert nothing_stored()
    assert not [r for r in fake_woocommerce.requests if r.path.startswith("/wp-json/")]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
def test_a_callback_that_is_not_a_json_object_is_refused(client, body):
    response = post_callback(client, body)

    assert response.status_code == 400
    assert nothing_stored()


def test_an_oversized_callback_is_refused(client, settings):
    # given
    settings.MAX_WEBHOOK_BODY_BYTES = 100

    # when
    response = post_callback(client, {"padding": "x" * 200})

    # then
    assert response.status_code == 413
    assert nothing_stored()


def test_keys_the_store_rejects_are_refused_and_nothing_is_stored(client, fake_woocommerce):
    # given: keys that look right but the store does not know
    location = connect(client, fake_woocommerce.base_url)["Location"]
    user_id = parse_qs(urlsplit(location).query)["user_id"][0]

    # when
    response = post_callback(
        client,
        {
            "key_id": 1,
            "user_id": user_id,
            "consumer_key": "ck_" + "1" * 40,
            "consumer_secret": "cs_" + "2" * 40,
            "key_permissions": "read",
        },
    )

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "platform_rejected"
    assert "Consumer key is invalid" in response.json()["detail"]
    assert nothing_stored()
    assert WooCommerceInstall.objects.get().completed_at is None


def test_a_wrong_consumer_secret_fails_the_oauth_signature_check(client, fake_woocommerce):
    # given
    location = connect(client, fake_woocommerce.base_url)["Location"]
    user_id = parse_qs(urlsplit(location).query)["user_id"][0]
    key = fake_woocommerce.issue_key()

    # when
    response = post_callback(
        client,
        {
            "key_id": key.key_id,
            "user_id": user_id,
            "consumer_key": key.consumer_key,
            "consumer_secret": "cs_" + "0" * 40,
            "key_permissions": "read",
        },
    )

    # then
    assert response.status_code == 400
    assert "Invalid signature" in response.json()["detail"]
    assert nothing_stored()


def test_a_store_answering_500_gives_502_and_the_install_can_be_retried(
    client, fake_woocommerce, woocommerce_transport
):
    # given
    fake_woocommerce.fail_with(500)
    location = connect(client, fake_woocommerce.base_url)["Location"]

    # when
    approval = fake_woocommerce.approve(location, transport=woocommerce_transport)

    # then
    assert approval.callback_status == 502
    assert woocommerce_transport.responses[0].json()["error"] == "platform_unavailable"
    assert nothing_stored()
    # and WooCommerce deleted the key; a second approval of the same pending install succeeds
    fake_woocommerce.recover()
    assert fake_woocommerce.approve(location, transport=woocommerce_transport).callback_status == 200
    assert Store.objects.get().status == Store.Status.ACTIVE


def test_an_unreachable_store_gives_502_and_nothing_is_stored(client, fake_woocommerce, woocommerce_transport):
    # given: the grant happened, then the store went down before our check
    location = connect(client, fake_woocommerce.base_url)["Location"]
    user_id = parse_qs(urlsplit(location).query)["user_id"][0]
    key = fake_woocommerce.issue_key()
    fake_woocommerce.stop()

    # when
    response = post_callback(
        client,
        {
            "key_id": key.key_id,
            "user_id": user_id,
            "consumer_key": key.consumer_key,
            "consumer_secret": key.consumer_secret,
            "key_permissions": "read",
        },
    )

    # then
    assert response.status_code == 502
    assert response.json()["error"] == "platform_unavailable"
    assert key.consumer_key not in response.json()["detail"]
    assert nothing_stored()


def test_the_callback_is_csrf_exempt(fake_woocommerce):
    # given
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    transport = DjangoClientTransport(client=client)

    # when
    approval = connect_and_approve(client, fake_woocommerce, transport)

    # then
    assert approval.callback_status == 200


def test_the_callback_answers_405_to_a_get(client):
    assert client.get("/woocommerce/callback").status_code == 405


def test_a_store_served_over_https_connects_with_basic_auth(client, fake_woocommerce_https, woocommerce_transport):
    # when
    approval = connect_and_approve(client, fake_woocommerce_https, woocommerce_transport)

    # then
    assert approval.callback_status == 200
    assert WooCommerceInstall.objects.get().store_url.startswith("https://127.0.0.1:")
    assert Store.objects.get().status == Store.Status.ACTIVE
    (check,) = [r for r in fake_woocommerce_https.requests if r.path.startswith("/wp-json/")]
    assert check.headers["authorization"].startswith("Basic ")


def test_a_connected_store_gets_a_working_client_from_its_stored_keys(client, fake_woocommerce, woocommerce_transport):
    # given
    fake_woocommerce.add_product(sku="MUG-1")
    connect_and_approve(client, fake_woocommerce, woocommerce_transport)
    store = Store.objects.get()

    # when
    answer = build_woocommerce_client(store=store).get("products", params={"per_page": 10})

    # then
    assert [p["sku"] for p in answer.body] == ["MUG-1"]
    assert get_store_api_url(store=store) == fake_woocommerce.base_url
