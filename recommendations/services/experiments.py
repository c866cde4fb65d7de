"""Writes of experiments: starting one (at most one runs per store) and stopping it."""

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from recommendations.experiments import check_weights, clear_experiment_cache
from recommendations.models import Arm, Experiment


def start_experiment(
    *, store: Store, name: str, weights: Mapping[str, object], default_arm: str = Arm.NETWORK
) -> Experiment:
    """Stop the store's running experiment, if any, and start a new one; InvalidRequest (400) on bad weights."""
    try:
        checked = check_weights(weights)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if default_arm not in Arm.values:
        raise InvalidRequest(f"default_arm: use one of {', '.join(Arm.values)}.")
    now = timezone.now()
    with transaction.atomic():
        Experiment.objects.filter(store=store, status=Experiment.Status.RUNNING).update(
            status=Experiment.Status.STOPPED, stopped_at=now
        )
        experiment = Experiment.objects.create(
            store=store,
            name=name[:200],
            status=Experiment.Status.RUNNING,
            weights=checked,
            default_arm=default_arm,
            started_at=now,
        )
    clear_experiment_cache()
    return experiment


def stop_experiment(*, experiment: Experiment) -> Experiment:
    """Stop a running experiment (a stopped one is left as it is)."""
    if experiment.status == Experiment.Status.RUNNING:
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.save(update_fields=["status", "stopped_at"])
    clear_experiment_cache()
    return experiment
