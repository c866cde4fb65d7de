import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from merchants.models import PlatformCredential, Store, StoreEvent
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db


def _raw_column(credential_id: int, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM merchants_platformcredential WHERE id = %s", [credential_id])  # noqa: S608
        return cursor.fetchone()[0]


def test_credentials_are_encrypted_at_rest_and_read_back_in_clear() -> None:
    credential = PlatformCredentialFactory.create(access_token="shpat_secret_value", consumer_secret="cs_abc")

    raw = _raw_column(credential.id, "access_token")

    assert "shpat_secret_value" not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert PlatformCredential.objects.get(id=credential.id).access_token == "shpat_secret_value"
    assert PlatformCredential.objects.get(id=credential.id).consumer_secret == "cs_abc"


def test_rotation_re_encrypts_with_the_new_key_and_old_key_can_then_be_dropped() -> None:
    # given a credential written under the old key
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    credential = PlatformCredentialFactory.create(access_token="tok-1", refresh_token="ref-1")
    new_key = Fernet.generate_key().decode()

    # when the new key is put first and the rotation runs
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        out = StringIO()
        call_command("rotate_encryption_keys", stdout=out)
        assert out.getvalue().strip() == "re-encrypted 1 credential row(s) with the current key"

    # then the row decrypts with the new key alone
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        reread = PlatformCredential.objects.get(id=credential.id)
        assert (reread.access_token, reread.refresh_token) == ("tok-1", "ref-1")
    assert Fernet(new_key.encode()).decrypt(_raw_column(credential.id, "access_token").encode()) == b"tok-1"


def test_create_store_command_prints_the_site_key_and_records_the_install() -> None:
    out = StringIO()

    call_command(
        "create_store", "--platform", "custom", "--domain", "Shop.Example.com", "--site-key", "demo-1", stdout=out
    )

    assert out.getvalue().strip() == "demo-1"
    store = Store.objects.get(site_key="demo-1")
    assert (store.platform, store.domain, store.status) == ("custom", "shop.example.com", Store.Status.ACTIVE)
    assert list(store.events.values_list("kind", flat=True)) == [StoreEvent.Kind.INSTALLED]


def test_create_store_command_refuses_a_taken_site_key_or_domain() -> None:
    StoreFactory.create(platform="custom", domain="a.example.com", site_key="taken")

    with pytest.raises(CommandError, match=re.escape("The site key 'taken' is taken.")):
        call_command("create_store", "--platform", "custom", "--domain", "b.example.com", "--site-key", "taken")
    with pytest.raises(CommandError, match=re.escape("A custom store for a.example.com already exists.")):
        call_command("create_store", "--platform", "custom", "--domain", "a.example.com")
    assert Store.objects.count() == 1


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "x" * 50}, "FIELD_ENCRYPTION_KEYS"),
        ({"DJANGO_SECRET_KEY": "x" * 50, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}, "SHOPIFY_API_KEY"),
    ],
)
def test_production_start_fails_naming_the_missing_secret(env: dict[str, str], missing: str, tmp_path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_", "SHOPIFY_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **clean,
            **env,
            "DJANGO_DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings",
            "BITRECS_LOCAL_DIR": str(tmp_path),
        },
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert f"ImproperlyConfigured: {missing} is not set." in result.stderr
    assert not (tmp_path / "secrets").exists()  # nothing is generated outside local mode
