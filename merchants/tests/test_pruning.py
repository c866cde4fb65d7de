"""Install handshakes that expired unused are forgotten; live and completed ones are kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merchants.models import OAuthState, WooCommerceInstall
from merchants.tasks import prune_expired_installs_task

pytestmark = pytest.mark.django_db


def test_expired_states_and_pending_installs_are_pruned(settings):
    settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS = 3600
    now = timezone.now()
    OAuthState.objects.create(nonce="old", shop="a.myshopify.com", created_at=now - timedelta(minutes=11))
    OAuthState.objects.create(nonce="live", shop="a.myshopify.com", created_at=now - timedelta(minutes=9))
    WooCommerceInstall.objects.create(
        user_id="stale", store_url="https://a.example", created_at=now - timedelta(hours=2)
    )
    WooCommerceInstall.objects.create(
        user_id="live", store_url="https://b.example", created_at=now - timedelta(minutes=5)
    )
    WooCommerceInstall.objects.create(
        user_id="done", store_url="https://c.example", created_at=now - timedelta(days=3), completed_at=now
    )

    deleted = prune_expired_installs_task.delay().get()

    assert deleted == 2
    assert list(OAuthState.objects.values_list("nonce", flat=True)) == ["live"]
    assert sorted(WooCommerceInstall.objects.values_list("user_id", flat=True)) == ["done", "live"]
