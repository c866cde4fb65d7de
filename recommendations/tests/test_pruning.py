"""Old network answers are forgotten, except those a list still serves."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, Placement, RecommendationList, Source
from recommendations.tasks import prune_network_answers_task

pytestmark = pytest.mark.django_db


def answer(store, rec_id: str, *, days_old: int) -> NetworkAnswer:
    return NetworkAnswer.objects.create(
        store=store,
        placement=Placement.PRODUCT,
        rec_id=rec_id,
        item_ids=["1"],
        miner_hotkey="5M",
        created_at=timezone.now() - timedelta(days=days_old),
    )


def test_old_answers_go_unless_still_served(settings):
    settings.RECS_NETWORK_ANSWER_RETENTION_DAYS = 120
    store = StoreFactory.create()
    answer(store, "n_old", days_old=200)
    answer(store, "n_recent", days_old=100)
    answer(store, "n_old_but_served", days_old=300)
    RecommendationList.objects.create(
        store=store, query_id="q1", placement=Placement.PRODUCT, source=Source.NETWORK, rec_id="n_old_but_served"
    )

    deleted = prune_network_answers_task.delay().get()

    assert deleted == 1
    assert sorted(NetworkAnswer.objects.values_list("rec_id", flat=True)) == ["n_old_but_served", "n_recent"]
