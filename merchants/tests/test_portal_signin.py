"""The WooCommerce plugin's portal sign-in link: verified, single use, short-lived, one store only, and used only from
its own confirmation page (no login CSRF)."""

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from bitrecs_site.tests.test_wordpress_boot import wordpress  # noqa: F401 (the fixture)
from merchants.models import PortalSignInNonce, Store, StoreMembership
from merchants.services.portal_signin import prune_signin_nonces, sign_signin_link
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "woocommerce" / "bitrecs"
SECRET = "cs_0123456789abcdef0123456789abcdef01234567"
OTHER_SECRET = "cs_" + "f" * 40
URL = "/portal/woocommerce/signin"


@pytest.fixture
def store() -> Store:
    store = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="shop.example", name="Shop example")
    PlatformCredentialFactory(
        store=store, access_token="", key_id="17", consumer_key="ck_" + "a" * 40, consumer_secret=SECRET
    )
    return store


def link(*, secret: str = SECRET, store_url: str = "https://shop.example", key_id: str = "17", **overrides: str):
    expires = overrides.pop("expires", str(int(timezone.now().timestamp()) + 300))
    nonce = overrides.pop("nonce", "00112233445566778899aabbccddeeff")
    params = {
        "store_url": store_url,
        "key_id": key_id,
        "expires": expires,
        "nonce": nonce,
        "signature": sign_signin_link(
            secret=secret, store_url=store_url, key_id=key_id, expires=int(expires), nonce=nonce
        ),
    }
    params.update(overrides)
    return params


def continue_from(client: Client, page) -> Any:
    """Submit the confirmation page's form as a browser would: its hidden fields and CSRF token, to its action."""
    body = page.content.decode()
    action = re.search(r'<form method="post" action="([^"]+)">', body)
    assert action is not None, body
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))
    return client.post(action.group(1), fields)


def sign_in(client: Client, params: dict[str, str]) -> Any:
    page = client.get(URL, params)
    assert page.status_code == 200, page.content.decode()
    return continue_from(client, page)


def test_the_shared_test_vector_matches_the_plugins():
    # The same vector as PluginTest::test_the_portal_link_is_signed_with_the_connected_keys_secret_and_lasts_5_minutes.
    signature = sign_signin_link(
        secret=SECRET,
        store_url="https://shop.example",
        key_id="17",
        expires=1767225900,
        nonce="00112233445566778899aabbccddeeff",
    )

    assert signature == "cc0377afce127d6ec4c76e010488f8672299bc5aae12f106a47cc926fc0d393c"


def test_a_valid_link_asks_to_continue_and_changes_nothing_until_then():
    store = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="shop.example", name="Shop example")
    PlatformCredentialFactory(store=store, access_token="", key_id="17", consumer_secret=SECRET)
    client = Client(enforce_csrf_checks=True)

    page = client.get(URL, link())

    assert page.status_code == 200
    assert page["Referrer-Policy"] == "same-origin"  # "no-referrer" may have the form posted with Origin: null
    body = page.content.decode()
    assert "Continue to Shop example" in body
    assert '<strong id="signin-store">shop.example</strong>' in body
    assert "_auth_user_id" not in client.session
    assert PortalSignInNonce.objects.count() == 0  # the link is still unused


def test_a_valid_link_signs_in_the_stores_user_and_opens_its_overview(store: Store):
    client = Client(enforce_csrf_checks=True)

    response = sign_in(client, link())

    assert response.status_code == 302
    assert response["Location"] == f"/portal/stores/{store.pk}/"
    assert response["Referrer-Policy"] == "no-referrer"
    overview = client.get(response["Location"])
    assert overview.status_code == 200
    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    assert user.username == f"woocommerce-store-{store.pk}"
    assert user.has_usable_password() is False
    assert list(StoreMembership.objects.filter(user=user).values_list("store_id", flat=True)) == [store.pk]
    assert PortalSignInNonce.objects.filter(store=store, nonce="00112233445566778899aabbccddeeff").count() == 1


def test_a_link_built_by_the_plugins_php_code_is_accepted(client: Client, store: Store):
    php = shutil.which("php")
    if php is None:
        pytest.fail("php is missing: `make system-packages` installs php-cli")
    result = subprocess.run(
        [php, str(PLUGIN / "tests" / "signin_link.php"), "17", SECRET], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    built = urlsplit(result.stdout.strip())
    assert (built.scheme, built.netloc, built.path) == ("https", "app.bitrecs.ai", URL)

    response = sign_in(client, dict(parse_qsl(built.query)))

    assert response.status_code == 302
    assert response["Location"] == f"/portal/stores/{store.pk}/"


def test_a_link_used_twice_is_refused_the_second_time(store: Store):
    params = link()
    opened_again, page_kept = Client(), Client()
    kept = page_kept.get(URL, params)  # opened in another tab before the first use
    first = sign_in(Client(), params)

    second = opened_again.get(URL, params)
    continued = continue_from(page_kept, kept)

    assert (first.status_code, kept.status_code) == (302, 200)
    assert (second.status_code, continued.status_code) == (403, 403)
    assert "This sign-in link was already used." in second.content.decode()
    assert "This sign-in link was already used." in continued.content.decode()
    assert "_auth_user_id" not in opened_again.session and "_auth_user_id" not in page_kept.session


def test_a_third_site_cannot_sign_a_merchant_in_with_its_own_link(store: Store):
    # given: a merchant signed in to the portal of their own store, and an attacker holding a valid link for ``store``
    mine = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="mine.example", name="Mine")
    PlatformCredentialFactory(store=mine, access_token="", key_id="5", consumer_secret=OTHER_SECRET)
    merchant = Client(enforce_csrf_checks=True)
    sign_in(merchant, link(secret=OTHER_SECRET, store_url="https://mine.example", key_id="5", nonce="a" * 32))
    signed_in_as = merchant.session["_auth_user_id"]

    # when: a third site sends the merchant's browser the link (a GET), and posts it (a cross-site form, no token)
    page = merchant.get(URL, link())
    posted = merchant.post(URL, link())

    # then: the page names the other store and says it would switch; the post is refused; nothing changed
    assert page.status_code == 200
    assert "You are signed in as woocommerce-store-" in page.content.decode()
    assert posted.status_code == 403
    assert merchant.session["_auth_user_id"] == signed_in_as
    assert PortalSignInNonce.objects.filter(store=store).count() == 0


def test_a_bad_link_posted_is_refused_like_one_opened(store: Store):
    client = Client()

    response = client.post(URL, {**link(), "signature": "0" * 64})

    assert response.status_code == 403
    assert "signature is not valid" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: link(secret=OTHER_SECRET), "signature is not valid", id="other-secret"),
        pytest.param(lambda: {**link(), "signature": "0" * 64}, "signature is not valid", id="bad-signature"),
        pytest.param(
            lambda: {**link(), "nonce": "ffffffffffffffffffffffffffffffff"}, "signature is not valid", id="nonce"
        ),
        pytest.param(
            lambda: link(expires=str(int(timezone.now().timestamp()) - 1)),
            "has expired (links last 5 minutes)",
            id="old",
        ),
        pytest.param(
            lambda: link(expires=str(int(timezone.now().timestamp()) + 3600)), "claims to last too long", id="long"
        ),
        pytest.param(lambda: link(key_id="16"), "REST key Bitrecs no longer uses", id="old-key"),
        pytest.param(lambda: link(store_url="https://other.example"), "not connected to Bitrecs", id="other-store"),
        pytest.param(lambda: link(store_url="javascript:alert(1)"), "names no store", id="bad-url"),
        pytest.param(lambda: {**link(), "expires": "soon"}, "incomplete", id="bad-expires"),
        pytest.param(lambda: {**link(), "nonce": "short"}, "incomplete", id="short-nonce"),
        pytest.param(lambda: {}, "incomplete", id="empty"),
    ],
)
def test_a_bad_link_is_a_403_page_saying_what_to_do(store: Store, make, message):
    client = Client()

    response = client.get(URL, make())

    assert response.status_code == 403
    body = response.content.decode()
    assert message in body
    assert "Open Bitrecs portal" in body
    assert "_auth_user_id" not in client.session
    assert PortalSignInNonce.objects.count() == 0


def test_an_uninstalled_store_cannot_be_signed_in_to(store: Store):
    Store.objects.filter(pk=store.pk).update(status=Store.Status.UNINSTALLED)

    response = Client().get(URL, link())

    assert response.status_code == 403
    assert "not connected to Bitrecs" in response.content.decode()


def test_the_link_signs_in_to_its_own_store_only(store: Store):
    other = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="other.example", name="Other")
    PlatformCredentialFactory(store=other, access_token="", key_id="5", consumer_secret=OTHER_SECRET)
    client = Client()
    sign_in(client, link())

    mine = client.get(f"/portal/stores/{store.pk}/")
    theirs = client.get(f"/portal/stores/{other.pk}/")

    assert (mine.status_code, theirs.status_code) == (200, 404)


def test_expired_nonces_are_pruned():
    store = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="old.example")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    PortalSignInNonce.objects.create(store=store, nonce="a" * 32, expires_at=now - timedelta(seconds=1))
    PortalSignInNonce.objects.create(store=store, nonce="b" * 32, expires_at=now + timedelta(seconds=1))

    deleted = prune_signin_nonces(now=now)

    assert deleted == 1
    assert list(PortalSignInNonce.objects.values_list("nonce", flat=True)) == ["b" * 32]


def test_a_link_made_by_the_plugin_in_a_real_wordpress_signs_in(request, settings):
    # Given: WordPress (Debian's, on MariaDB) with the plugin, and WooCommerce's api_keys table holding the keys the
    # Bitrecs app was given (key 2 is the current one: cs_111…) and another app's key
    port, installed = request.getfixturevalue("wordpress")
    settings.LOCAL_MODE = True  # the shop is http://127.0.0.1:<port>
    store = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain=f"127.0.0.1:{port}", name="WP shop")
    PlatformCredentialFactory.create(store=store, access_token="", key_id="2", consumer_secret="cs_" + "1" * 40)
    assert installed["portal_url_unconnected"] == ""
    built = urlsplit(installed["portal_url"])
    assert (built.netloc, built.path) == ("127.0.0.1:9", URL)  # the Bitrecs server the plugin is set up with

    response = sign_in(Client(), dict(parse_qsl(built.query)))

    assert response.status_code == 302
    assert response["Location"] == f"/portal/stores/{store.pk}/"
