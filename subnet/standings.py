"""Reads for the portal's network pages: who a hotkey is on the chain, the public leaderboard, a miner's and a
validator's figures.

The chain is BITRECS_NETWORK's: the local chain's tables (`ChainNeuron`, `ChainWeight`), or the metagraph of
bittensor's subtensor (test/finney), read at most every BITRECS_METAGRAPH_TTL_SECONDS and cached. The names and
units are the subnet explorers' (taostats, STOREFRONT.md §6), and a figure the chain does not give is None:
the local chain has no blocks, trust or emission, and bittensor 10.5.0's metagraph has no trust (dTAO).
Scores, rejections and their reasons come from `MinerScore` and `ScoreRound` (what our validators saved when
they set weights), the gateway's view from `NetworkRequest`, storefront actions from the daily rollups.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max
from django.utils import timezone

from recommendations.selectors.miners import MinerDay, list_miner_days
from subnet.models import ChainNeuron, ChainWeight, MinerScore, NetworkRequest, ScoreRound

__all__ = [
    "ChainUnavailable",
    "LeaderRow",
    "MinerReport",
    "Neuron",
    "ValidatorReport",
    "get_miner_report",
    "get_neuron",
    "get_validator_report",
    "list_leaderboard",
    "list_neurons",
    "neurons_from_metagraph",
    "register_hint",
]

DEFAULT_DAYS: Final = 30
# Rows read for one page at most: the newest ones (a busy validator sets weights every minute in local mode).
MAX_ROUNDS: Final = 3_000
MAX_LATENCIES: Final = 5_000
# "updated" above this many blocks is an alert on the explorers (under 500 is healthy).
UPDATED_ALERT_BLOCKS: Final = 1_500
_CACHE_KEY: Final = "subnet:portal-neurons:{network}:{netuid}"
# Chart.js options of a chart whose values are never negative.
_FROM_ZERO: Final[dict[str, Any]] = {"scales": {"y": {"min": 0}}}


class ChainUnavailable(Exception):
    """The chain of BITRECS_NETWORK could not be read just now."""


@dataclass(frozen=True)
class Neuron:
    """A registered hotkey as the chain gives it; None where this chain has no such figure."""

    uid: int
    hotkey: str
    coldkey: str = ""
    validator_permit: bool = False
    stake: float = 0.0
    consensus: float | None = None
    incentive: float | None = None
    dividends: float | None = None
    emission: float | None = None
    validator_trust: float | None = None
    updated: int | None = None  # blocks since the neuron last set weights (or registered)
    axon: str = ""

    @property
    def role(self) -> str:
        return ChainNeuron.Role.VALIDATOR if self.validator_permit else ChainNeuron.Role.MINER


def neurons_from_metagraph(metagraph: Any) -> list[Neuron]:
    """The neurons of a bittensor `Metagraph` (lite), by uid."""
    block = int(metagraph.block)

    def at(values: Any, uid: int) -> float | None:
        values = list(values) if values is not None else []
        return float(values[uid]) if uid < len(values) else None

    neurons = []
    for uid, hotkey in enumerate(metagraph.hotkeys):
        last_update = at(getattr(metagraph, "last_update", None), uid)
        axon = metagraph.axons[uid] if uid < len(metagraph.axons) else None
        neurons.append(
            Neuron(
                uid=uid,
                hotkey=str(hotkey),
                coldkey=str(metagraph.coldkeys[uid]) if uid < len(metagraph.coldkeys) else "",
                validator_permit=bool(metagraph.validator_permit[uid]),
                stake=at(metagraph.S, uid) or 0.0,
                consensus=at(metagraph.C, uid),
                incentive=at(metagraph.I, uid),
                dividends=at(metagraph.D, uid),
                emission=at(metagraph.E, uid),
                validator_trust=at(metagraph.Tv, uid),
                updated=None if last_update is None else max(0, block - int(last_update)),
                axon=f"{axon.ip}:{axon.port}" if axon is not None and axon.is_serving else "",
            )
        )
    return neurons


def _local_neurons(*, netuid: int) -> list[Neuron]:
    return [
        Neuron(
            uid=row.uid,
            hotkey=row.hotkey,
            coldkey=row.coldkey,
            validator_permit=row.role == ChainNeuron.Role.VALIDATOR,
            stake=row.stake,
            axon=f"{row.axon_ip}:{row.axon_port}" if row.axon_ip and row.axon_port else "",
        )
        for row in ChainNeuron.objects.filter(netuid=netuid).order_by("uid")
    ]


def _read_metagraph(*, network: str, netuid: int) -> list[Neuron]:
    from subnet.protocol import bt  # bittensor only where a real chain is read

    return neurons_from_metagraph(bt.Subtensor(network=network).metagraph(netuid=netuid, lite=True))


def list_neurons() -> list[Neuron]:
    """Every neuron of BITRECS_NETWORK's chain on BITRECS_NETUID, by uid; `ChainUnavailable` if it cannot be read."""
    network, netuid = settings.BITRECS_NETWORK, settings.BITRECS_NETUID
    if network == "local":
        return _local_neurons(netuid=netuid)
    key = _CACHE_KEY.format(network=network, netuid=netuid)
    cached = cache.get(key)
    if cached is None:
        try:
            cached = _read_metagraph(network=network, netuid=netuid)
        except Exception as exc:  # the chain is another process on the internet: any failure means "not now"
            raise ChainUnavailable(
                f"cannot read netuid {netuid} of the {network!r} chain: {type(exc).__name__}"
            ) from exc
        cache.set(key, cached, timeout=int(settings.BITRECS_METAGRAPH_TTL_SECONDS))
    return list(cached)


def get_neuron(*, hotkey: str) -> Neuron | None:
    """The hotkey's neuron on BITRECS_NETWORK's chain (its role from the validator permit), or None if unregistered."""
    return next((neuron for neuron in list_neurons() if neuron.hotkey == hotkey), None)


def register_hint() -> str:
    """How a hotkey gets registered on BITRECS_NETWORK's netuid (a command a person can run)."""
    network, netuid = settings.BITRECS_NETWORK, settings.BITRECS_NETUID
    if network == "local":
        return (
            f"python manage.py run_miner --local-chain --netuid {netuid} --create-wallet "
            "--wallet-name WALLET --hotkey HOTKEY"
        )
    return f"btcli subnet register --netuid {netuid} --network {network} --wallet.name WALLET --wallet.hotkey HOTKEY"


# ----------------------------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class LeaderRow:
    """One neuron on the public leaderboard: the chain's figures, our validators' score, and its penalties."""

    position: int
    neuron: Neuron
    score: float | None
    weight: float | None
    answers: int
    valid_answers: int
    penalties: dict[str, int]
    weights_set_at: datetime | None = None

    @property
    def validity(self) -> float | None:
        return self.valid_answers / self.answers if self.answers else None

    @property
    def rejected(self) -> int:
        return self.answers - self.valid_answers

    @property
    def updated_alert(self) -> bool:
        return self.neuron.updated is not None and self.neuron.updated > UPDATED_ALERT_BLOCKS

    def as_json(self) -> dict[str, Any]:
        neuron = self.neuron
        return {
            "position": self.position,
            "uid": neuron.uid,
            "hotkey": neuron.hotkey,
            "coldkey": neuron.coldkey,
            "role": neuron.role,
            "validator_permit": neuron.validator_permit,
            "stake": neuron.stake,
            "vtrust": neuron.validator_trust,
            "consensus": neuron.consensus,
            "incentive": neuron.incentive,
            "dividends": neuron.dividends,
            "emission": neuron.emission,
            "updated": neuron.updated,
            "score": self.score,
            "weight": self.weight,
            "answers": self.answers,
            "valid_answers": self.valid_answers,
            "validity": self.validity,
            "penalties": self.penalties,
            "weights_set_at": self.weights_set_at.isoformat() if self.weights_set_at else None,
        }


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def list_leaderboard(*, days: int = 7) -> list[LeaderRow]:
    """Miners by our validators' score (best first, unscored last by incentive), then the validators."""
    netuid = settings.BITRECS_NETUID
    neurons = list_neurons()
    by_hotkey = {neuron.hotkey: neuron for neuron in neurons}
    scores: dict[str, list[float]] = defaultdict(list)
    answers: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    for row in MinerScore.objects.filter(netuid=netuid, miner_hotkey__in=list(by_hotkey)):
        scores[row.miner_hotkey].append(row.score)
        answers[row.miner_hotkey] += row.answers
        valid[row.miner_hotkey] += row.valid_answers
    penalties: dict[str, Counter[str]] = defaultdict(Counter)
    since = timezone.now() - timedelta(days=days)
    newest = ScoreRound.objects.filter(netuid=netuid, recorded_at__gte=since).order_by("-recorded_at")
    for hotkey, problems in newest.values_list("miner_hotkey", "problems")[:MAX_ROUNDS]:
        penalties[hotkey].update({str(reason): int(count) for reason, count in (problems or {}).items()})
    weights = _consensus_weights(netuid=netuid, neurons=neurons)
    weights_set = {
        row["validator_hotkey"]: row["last"]
        for row in ChainWeight.objects.filter(netuid=netuid).values("validator_hotkey").annotate(last=Max("set_at"))
    }

    def order(neuron: Neuron) -> tuple[int, int, float, float, int]:
        score = _mean(scores.get(neuron.hotkey, []))
        return (
            int(neuron.validator_permit),
            int(score is None),
            -(score or 0.0),
            -(neuron.incentive or 0.0),
            neuron.uid,
        )

    return [
        LeaderRow(
            position=position,
            neuron=neuron,
            score=_mean(scores.get(neuron.hotkey, [])),
            weight=weights.get(neuron.uid),
            answers=answers[neuron.hotkey],
            valid_answers=valid[neuron.hotkey],
            penalties=dict(penalties[neuron.hotkey].most_common()),
            weights_set_at=weights_set.get(neuron.hotkey),
        )
        for position, neuron in enumerate(sorted(neurons, key=order), start=1)
    ]


def _consensus_weights(*, netuid: int, neurons: Iterable[Neuron]) -> dict[int, float]:
    """Per miner uid, the stake-weighted mean of the weights the validators set on the local chain ({} elsewhere)."""
    stakes = {neuron.hotkey: neuron.stake for neuron in neurons if neuron.validator_permit}
    rows = list(ChainWeight.objects.filter(netuid=netuid, validator_hotkey__in=list(stakes)))
    setters = {row.validator_hotkey for row in rows}
    total = math.fsum(max(stakes[hotkey], 0.0) for hotkey in setters)
    if not rows:
        return {}
    weighted: dict[int, float] = defaultdict(float)
    for row in rows:
        share = max(stakes[row.validator_hotkey], 0.0) / total if total > 0 else 1 / len(setters)
        weighted[row.miner_uid] += share * row.weight
    return dict(weighted)


# -------------------------------------------------------------------------------------------------- charts


def _short(hotkey: str) -> str:
    return f"{hotkey[:6]}…{hotkey[-4:]}" if len(hotkey) > 12 else hotkey


def _time_label(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%m-%d %H:%M")


def _series_chart(
    rows: Sequence[ScoreRound], *, value: str, series: str = "validator_hotkey", kind: str = "line"
) -> dict[str, Any]:
    """A Chart.js spec: one dataset per validator (or per `series`), aligned on the rounds' times."""
    labels = sorted({row.recorded_at for row in rows})
    index = {moment: position for position, moment in enumerate(labels)}
    data: dict[str, list[float | None]] = {}
    for row in rows:
        key = str(getattr(row, series))
        data.setdefault(key, [None] * len(labels))[index[row.recorded_at]] = getattr(row, value)
    return {
        "type": kind,
        "labels": [_time_label(moment) for moment in labels],
        "datasets": [
            {"label": _short(key) if series == "validator_hotkey" else f"uid {key}", "data": values, "spanGaps": True}
            for key, values in sorted(data.items())
        ],
        "options": {},
    }


def percentile(values: Sequence[int], fraction: float) -> int | None:
    """Nearest-rank percentile (`fraction` in (0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# ---------------------------------------------------------------------------------------------- miner page


@dataclass(frozen=True)
class RankChange:
    """A validator ranked the miner `before`, then `after` (1 is the best)."""

    at: datetime
    validator_hotkey: str
    before: int
    after: int

    @property
    def moved_up(self) -> bool:
        return self.after < self.before


@dataclass(frozen=True)
class MinerReport:
    """Everything a miner's page shows, for the last `days` days."""

    hotkey: str
    days: int
    answers: int
    valid_answers: int
    validity: float | None
    problems: dict[str, int]
    agreement: float | None
    latency_p50_ms: int | None
    latency_p99_ms: int | None
    gateway_requests: dict[str, int]
    gateway_rejections: dict[str, int]
    gateway_latency_p50_ms: int | None
    gateway_latency_p99_ms: int | None
    attributed: dict[str, Any]
    standings: list[MinerScore]
    rank_changes: list[RankChange]
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def has_rounds(self) -> bool:
        return bool(self.charts.get("score", {}).get("labels"))


def _newest_rounds(queryset: Any) -> list[ScoreRound]:
    return list(reversed(queryset.order_by("-recorded_at", "-miner_uid")[:MAX_ROUNDS]))


def _rank_changes(rows: Sequence[ScoreRound], *, limit: int = 10) -> list[RankChange]:
    last: dict[str, int] = {}
    changes = []
    for row in rows:
        before = last.get(row.validator_hotkey)
        if before is not None and before != row.rank:
            changes.append(
                RankChange(at=row.recorded_at, validator_hotkey=row.validator_hotkey, before=before, after=row.rank)
            )
        last[row.validator_hotkey] = row.rank
    return changes[-limit:][::-1]


def _attributed(days: Sequence[MinerDay]) -> dict[str, Any]:
    names = ("impressions", "clicks", "views", "add_to_carts", "purchases", "orders")
    totals: dict[str, Any] = {name: sum(getattr(day, name) for day in days) for name in names}
    totals["revenue"] = sum((day.revenue for day in days), start=MinerDay(day=date.min).revenue)
    return totals


def get_miner_report(*, hotkey: str, days: int = DEFAULT_DAYS) -> MinerReport:
    """A miner's figures over the last `days` days: validators' standings and rounds, gateway requests, actions."""
    netuid = settings.BITRECS_NETUID
    now = timezone.now()
    since = now - timedelta(days=days)
    rounds = _newest_rounds(ScoreRound.objects.filter(netuid=netuid, miner_hotkey=hotkey, recorded_at__gte=since))
    standings = list(MinerScore.objects.filter(netuid=netuid, miner_hotkey=hotkey).order_by("validator_hotkey"))
    problems: Counter[str] = Counter()
    agreement_sum, agreement_weight = 0.0, 0
    for row in rounds:
        problems.update({str(reason): int(count) for reason, count in (row.problems or {}).items()})
        if row.agreement is not None and row.round_valid:
            agreement_sum += row.agreement * row.round_valid
            agreement_weight += row.round_valid
    latest = next((row for row in reversed(rounds) if row.latency_p50_ms is not None), None)
    answers = sum(row.answers for row in standings)
    valid = sum(row.valid_answers for row in standings)
    requests = NetworkRequest.objects.filter(miner_hotkey=hotkey, created_at__gte=since)
    by_status = dict(requests.values_list("status").annotate(count=Count("id")).order_by("status"))
    rejections = dict(
        requests.filter(status=NetworkRequest.Status.REJECTED)
        .values_list("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")
    )
    latencies = [
        int(value)
        for value in requests.filter(status=NetworkRequest.Status.ANSWERED, latency_ms__isnull=False)
        .order_by("-created_at")
        .values_list("latency_ms", flat=True)[:MAX_LATENCIES]
        if value is not None
    ]
    miner_days = list_miner_days(miner_hotkey=hotkey, since=(now - timedelta(days=days)).date())
    charts = {
        "score": _series_chart(rounds, value="score"),
        "weight": _series_chart(rounds, value="weight"),
        "rank": _series_chart(rounds, value="rank"),
        "latency": _latency_chart(rounds),
        "attributed": _attributed_chart(miner_days),
    }
    charts["distribution"] = _distribution_chart(rounds[-1] if rounds else None)
    charts["rank"]["options"] = {"scales": {"y": {"reverse": True, "ticks": {"precision": 0}}}}
    for name in ("score", "weight", "latency", "attributed"):
        charts[name]["options"] = _FROM_ZERO
    return MinerReport(
        hotkey=hotkey,
        days=days,
        answers=answers,
        valid_answers=valid,
        validity=valid / answers if answers else None,
        problems=dict(problems.most_common()),
        agreement=agreement_sum / agreement_weight if agreement_weight else None,
        latency_p50_ms=latest.latency_p50_ms if latest else None,
        latency_p99_ms=latest.latency_p99_ms if latest else None,
        gateway_requests={status: int(by_status.get(status, 0)) for status in NetworkRequest.Status.values},
        gateway_rejections={str(code or "unknown"): int(count) for code, count in rejections.items()},
        gateway_latency_p50_ms=percentile(latencies, 0.5),
        gateway_latency_p99_ms=percentile(latencies, 0.99),
        attributed=_attributed(miner_days),
        standings=standings,
        rank_changes=_rank_changes(rounds),
        charts=charts,
    )


def _latency_chart(rows: Sequence[ScoreRound]) -> dict[str, Any]:
    timed = [row for row in rows if row.latency_p50_ms is not None]
    spec = _series_chart(timed, value="latency_p50_ms")
    p99 = _series_chart(timed, value="latency_p99_ms")
    for dataset in spec["datasets"]:
        dataset["label"] = f"p50 {dataset['label']}"
    for dataset in p99["datasets"]:
        dataset["label"] = f"p99 {dataset['label']}"
    spec["datasets"] += p99["datasets"]
    return spec


def _distribution_chart(latest: ScoreRound | None) -> dict[str, Any]:
    """The weights of every miner in the validator's latest round that scored this miner: yours apart."""
    rows = (
        list(
            ScoreRound.objects.filter(
                netuid=latest.netuid, validator_hotkey=latest.validator_hotkey, recorded_at=latest.recorded_at
            ).order_by("miner_uid")
        )
        if latest is not None
        else []
    )
    return {
        "type": "bar",
        "labels": [f"uid {row.miner_uid}" for row in rows],
        "datasets": [
            {"label": "You", "data": [row.weight if row.pk == latest.pk else None for row in rows]},
            {"label": "Other miners", "data": [None if row.pk == latest.pk else row.weight for row in rows]},
        ]
        if latest is not None
        else [],
        "options": {"scales": {"x": {"stacked": True}, "y": {"stacked": True, "min": 0}}},
    }


def _attributed_chart(days: Sequence[MinerDay]) -> dict[str, Any]:
    return {
        "type": "bar",
        "labels": [day.day.isoformat() for day in days],
        "datasets": [
            {"label": "Product views", "data": [day.views for day in days]},
            {"label": "Add-to-carts", "data": [day.add_to_carts for day in days]},
            {"label": "Purchases", "data": [day.purchases for day in days]},
        ],
        "options": {},
    }


# ------------------------------------------------------------------------------------------ validator page


@dataclass(frozen=True)
class ValidatorReport:
    """Everything a validator's page shows, for the last `days` days."""

    hotkey: str
    days: int
    api_url: str
    requests: dict[str, int]
    latency_p50_ms: int | None
    latency_p99_ms: int | None
    weights: dict[int, float]
    weights_set_at: datetime | None
    rounds: int
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)


def validator_api_url(*, neuron: Neuron) -> str:
    """The validator's API base URL: its axon on the local chain, else its axon's ip with BITRECS_VALIDATOR_API_PORT."""
    if not neuron.axon:
        return ""
    host, _, port = neuron.axon.rpartition(":")
    if settings.BITRECS_NETWORK != "local":
        port = str(settings.BITRECS_VALIDATOR_API_PORT)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def get_validator_report(*, neuron: Neuron, days: int = DEFAULT_DAYS) -> ValidatorReport:
    """A validator's figures: requests the gateway sent it, their latency, and the weights it set over time."""
    netuid = settings.BITRECS_NETUID
    since = timezone.now() - timedelta(days=days)
    api_url = validator_api_url(neuron=neuron)
    requests = NetworkRequest.objects.filter(validator=api_url, created_at__gte=since) if api_url else None
    by_status: Mapping[str, int] = {}
    latencies: list[int] = []
    daily: dict[str, Counter[str]] = defaultdict(Counter)
    if requests is not None:
        by_status = dict(requests.values_list("status").annotate(count=Count("id")).order_by("status"))
        latencies = [
            int(value)
            for value in requests.filter(latency_ms__isnull=False)
            .order_by("-created_at")
            .values_list("latency_ms", flat=True)[:MAX_LATENCIES]
            if value is not None
        ]
        for created_at, status in requests.order_by("-created_at").values_list("created_at", "status")[:MAX_LATENCIES]:
            daily[timezone.localtime(created_at).date().isoformat()][status] += 1
    rounds = _newest_rounds(
        ScoreRound.objects.filter(netuid=netuid, validator_hotkey=neuron.hotkey, recorded_at__gte=since)
    )
    weights = dict(
        ChainWeight.objects.filter(netuid=netuid, validator_hotkey=neuron.hotkey)
        .order_by("miner_uid")
        .values_list("miner_uid", "weight")
    )
    last_set = ChainWeight.objects.filter(netuid=netuid, validator_hotkey=neuron.hotkey).order_by("-set_at").first()
    day_labels = sorted(daily)
    charts = {
        "weights": {**_series_chart(rounds, value="weight", series="miner_uid"), "options": _FROM_ZERO},
        "requests": {
            "type": "bar",
            "labels": day_labels,
            "datasets": [
                {"label": status.capitalize(), "data": [daily[day][status] for day in day_labels]}
                for status in NetworkRequest.Status.values
            ],
            "options": {"scales": {"x": {"stacked": True}, "y": {"stacked": True, "min": 0}}},
        },
    }
    return ValidatorReport(
        hotkey=neuron.hotkey,
        days=days,
        api_url=api_url,
        requests={status: int(by_status.get(status, 0)) for status in NetworkRequest.Status.values},
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p99_ms=percentile(latencies, 0.99),
        weights=weights,
        weights_set_at=last_set.set_at if last_set else None,
        rounds=len({row.recorded_at for row in rounds}),
        charts=charts,
    )
