"""Writes of experiments: starting one (at most one runs per store) and stopping it, and the order summaries
(one row per order: net revenue, visitor and arm) the experiment report and the AOV figures read.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from recommendations.experiments import assign_arm, check_weights, clear_experiment_cache
from recommendations.models import Arm, AttributedLine, Experiment, OrderSummary


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


@dataclass(frozen=True)
class SummaryLine:
    """One line of an order as attribution saw it: when, its net revenue, the arm its property named."""

    ordered_at: datetime
    net: Decimal
    arm: str = ""


def experiment_at(*, store: Store, moment: datetime) -> Experiment | None:
    """The store's experiment that was running at `moment` (started before it, not stopped by then)."""
    return (
        Experiment.objects.filter(store=store, started_at__lte=moment)
        .filter(Q(stopped_at__isnull=True) | Q(stopped_at__gt=moment))
        .order_by("-started_at", "-id")
        .first()
    )


def summarise_order(
    *,
    store: Store,
    order_id: str,
    lines: Sequence[SummaryLine],
    attributed: Sequence[AttributedLine],
    session_id: str = "",
) -> OrderSummary | None:
    """Keep the order's summary row up to date (removed once the order has no lines); idempotent.

    The arm is the sticky assignment of the order's session in the experiment running when it was placed (what
    the widget served that visitor, the holdout included); without a session id, the arm a line property names.
    """
    if not lines:
        OrderSummary.objects.filter(store=store, order_id=order_id).delete()
        return None
    ordered_at = min(line.ordered_at for line in lines)
    arm = next((line.arm for line in lines if line.arm in Arm.values), "")
    experiment = experiment_at(store=store, moment=ordered_at)
    if experiment is not None and session_id:
        try:
            weights = check_weights(experiment.weights)
        except ValueError:
            weights = {}
        if weights:
            arm = assign_arm(store_id=store.id, experiment_id=experiment.id, session_id=session_id, weights=weights)
    deterministic = [row for row in attributed if row.kind == AttributedLine.Kind.DETERMINISTIC]
    summary, _ = OrderSummary.objects.update_or_create(
        store=store,
        order_id=order_id,
        defaults={
            "ordered_at": ordered_at,
            "revenue": sum((line.net for line in lines), Decimal("0.00")),
            "attributed_revenue": sum((row.gross - row.refunded for row in deterministic), Decimal("0.00")),
            "recommended": bool(deterministic),
            "session_id": session_id[:64],
            "arm": arm,
            "experiment": experiment,
        },
    )
    return summary
