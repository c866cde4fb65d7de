"""A sync survives its worker process being killed in the middle of a page: nothing lost, nothing duplicated."""

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from bitrecs_site.celery import app as celery_app
from bitrecs_site.testing.celery_worker import WorkerProcess, wait_for
from bitrecs_site.testing.fake_shopify_admin import FakeShopifyAdmin, make_product
from catalog_sync.models import Product, SyncRun, Variant
from catalog_sync.tasks import resume_stalled_syncs_task, sync_store_task
from merchants.models import Store
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _start_sync_and_kill_mid_page(
    celery_worker_process, fake: FakeShopifyAdmin, *, kill_all: bool = False
) -> tuple[Store, WorkerProcess, list[int]]:
    """A 150-product shop that answers slowly; kill the pool processes during a page after the first has landed."""
    fake.products = [make_product(n, title=f"Lamp {n}", variants=2) for n in range(1, 151)]
    fake.delay_seconds = 0.4
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY, domain="killed-worker.myshopify.com")
    PlatformCredentialFactory.create(
        store=store, access_token=fake.access_token, access_token_expires_at=timezone.now() + timedelta(hours=1)
    )
    worker = celery_worker_process(
        env={"SHOPIFY_ADMIN_URL_TEMPLATE": fake.base_url_template}, pool="prefork", concurrency=2
    )
    sync_store_task.delay(store.id)
    assert wait_for(lambda: SyncRun.objects.filter(store=store, done__gte=35).exists(), timeout=90)
    # Kill while the next page's request is in the fake shop (it answers after 0.4 s): mid-page for sure, not in
    # the instant between a page's commit and the enqueueing of the next step (that case is the stalled-run
    # resumption's, tested below).
    asked = len(fake.requests)
    assert wait_for(lambda: len(fake.requests) > asked, timeout=30, interval=0.005)
    busy = worker.children()
    if kill_all:
        worker.kill()
        return store, worker, busy
    for pid in busy:
        os.kill(pid, signal.SIGKILL)
    return store, worker, busy


def _assert_synced_exactly_once(store: Store) -> None:
    def finished() -> bool:
        return SyncRun.objects.filter(store=store).exclude(status=SyncRun.Status.RUNNING).exists()

    assert wait_for(finished, timeout=120)
    run = SyncRun.objects.get(store=store)
    assert (run.status, run.seen, run.created, run.updated, run.failed) == (SyncRun.Status.SUCCEEDED, 150, 150, 0, 0)
    assert Product.objects.filter(store=store).count() == 150
    assert Variant.objects.filter(product__store=store).count() == 300


@pytest.mark.skipif(
    not celery_app.conf.broker_url.startswith(("redis://", "amqp://")),
    reason="the file-system transport gives a lost worker's message back only at shutdown (see the next test)",
)
def test_the_broker_redelivers_the_killed_step_and_the_sync_completes_once(celery_worker_process, fake_shopify_admin):
    store, worker, killed = _start_sync_and_kill_mid_page(celery_worker_process, fake_shopify_admin)

    _assert_synced_exactly_once(store)
    assert worker.children() and not set(worker.children()) & set(killed)  # new pool processes did the rest


def test_a_crashed_worker_s_sync_is_resumed_by_a_new_worker_and_completes_once(
    celery_worker_process, fake_shopify_admin
):
    # given a sync whose whole worker (main and pool processes) died mid-page: its message may never come back
    store, _, _ = _start_sync_and_kill_mid_page(celery_worker_process, fake_shopify_admin, kill_all=True)
    run = SyncRun.objects.get(store=store)
    assert run.status == SyncRun.Status.RUNNING

    # when a new worker starts and the scheduled resumption runs
    celery_worker_process(env={"SHOPIFY_ADMIN_URL_TEMPLATE": fake_shopify_admin.base_url_template})
    resume_stalled_syncs_task.delay(0)

    # then every page is applied once
    _assert_synced_exactly_once(store)
