"""Experiments: sticky arm assignment, team-draft interleaving, and the reads serving needs (arm, placement settings).

Assignment is a hash of (store, experiment, session id): the same visitor gets the same arm on every request and
every device that shares the id, with no extra request and nothing stored server-side. A visitor without a session
id (no consent) gets the experiment's default arm and is left out of its figures (`counted` is False).

Interleaving (Radlinski, Kurup and Joachims, "How does clickthrough data reflect retrieval quality?", CIKM 2008,
team draft): the two lists take turns picking their best item not yet shown; the team with fewer picks goes next
and a fair coin (seeded, so a page shows the same order on reload) breaks ties. Each card keeps its team, so a
click credits the list that placed it.
"""

import hashlib
import random
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from django.conf import settings

from recommendations.models import Arm, Experiment, Placement, PlacementSettings, Source

ARM_ORDER: Final[tuple[str, ...]] = tuple(Arm.values)  # fixed, so weights map to the same buckets everywhere
MAX_WEIGHT: Final = 10_000
DEFAULT_COUNT: Final = 4

T = TypeVar("T")


# --- Pure functions ------------------------------------------------------------------------------------------


def check_weights(weights: Mapping[str, object]) -> dict[str, int]:
    """The weights of known arms as integers (0 dropped); ValueError saying what is wrong otherwise."""
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError('weights: give at least one arm a weight, e.g. {"network": 50, "local": 50}.')
    checked: dict[str, int] = {}
    for arm, weight in weights.items():
        if arm not in ARM_ORDER:
            raise ValueError(f"weights: {arm!r} is not an arm; use {', '.join(ARM_ORDER)}.")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weights: the weight of {arm} must be a whole number from 0 to {MAX_WEIGHT}.")
        if weight:
            checked[arm] = weight
    if not checked:
        raise ValueError("weights: at least one arm needs a weight above 0.")
    return {arm: checked[arm] for arm in ARM_ORDER if arm in checked}


def assign_arm(*, store_id: int, experiment_id: int, session_id: str, weights: Mapping[str, int]) -> str:
    """The arm of a session: a uniform 64-bit hash of (store, experiment, session) placed on the weights' buckets."""
    total = sum(weights.get(arm, 0) for arm in ARM_ORDER)
    if total <= 0:
        raise ValueError("weights sum to 0")
    digest = hashlib.sha256(f"{store_id}:{experiment_id}:{session_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for arm in ARM_ORDER:
        point -= weights.get(arm, 0)
        if point < 0:
            return arm
    raise AssertionError("unreachable: the point lies below the total")


@dataclass(frozen=True)
class Pick(Generic[T]):
    item: T
    team: str  # Source.NETWORK or Source.LOCAL


def team_draft_interleave(
    *,
    network: Sequence[T],
    local: Sequence[T],
    limit: int,
    seed: str,
    key: Callable[[T], Hashable] = lambda item: item,
) -> list[Pick[T]]:
    """Interleave two ranked lists by team draft, at most `limit` picks; items equal by `key` appear once."""
    coin = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 (a fair coin, not a secret)
    teams: dict[str, list[T]] = {Source.NETWORK.value: list(network), Source.LOCAL.value: list(local)}
    cursor: dict[str, int] = dict.fromkeys(teams, 0)
    picked: dict[str, int] = dict.fromkeys(teams, 0)
    shown: set[Hashable] = set()
    result: list[Pick[T]] = []

    def next_of(team: str) -> T | None:
        items = teams[team]
        while cursor[team] < len(items) and key(items[cursor[team]]) in shown:
            cursor[team] += 1
        return items[cursor[team]] if cursor[team] < len(items) else None

    while len(result) < limit:
        available: dict[str, T] = {}
        for name in teams:
            candidate = next_of(name)
            if candidate is not None:
                available[name] = candidate
        if not available:
            break
        if len(available) == 1:
            team = next(iter(available))
        elif picked[Source.NETWORK] != picked[Source.LOCAL]:
            team = min(available, key=lambda t: picked[t])
        else:
            team = Source.NETWORK if coin.random() < 0.5 else Source.LOCAL
        item = available[team]
        shown.add(key(item))
        picked[team] += 1
        result.append(Pick(item=item, team=team))
    return result


def interleaving_preference(*, clicks: Sequence[str]) -> str | None:
    """The team whose cards got more clicks in one impression of an interleaved list (None: a tie, no clicks)."""
    network = sum(1 for team in clicks if team == Source.NETWORK)
    local = sum(1 for team in clicks if team == Source.LOCAL)
    if network == local:
        return None
    return Source.NETWORK if network > local else Source.LOCAL


# --- Selectors -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmChoice:
    """The arm a request is served with; `counted` is False for visitors left out of the figures (no consent)."""

    arm: str
    experiment_id: int
    counted: bool


@dataclass(frozen=True)
class _Running:
    id: int
    weights: dict[str, int]
    default_arm: str


_running_cache: dict[int, tuple[float, _Running | None]] = {}
_RUNNING_CACHE_MAX = 10_000


def _running_experiment(store_id: int) -> _Running | None:
    now = time.monotonic()
    cached = _running_cache.get(store_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = (
        Experiment.objects.filter(store_id=store_id, status=Experiment.Status.RUNNING)
        .values_list("id", "weights", "default_arm")
        .first()
    )
    running = None
    if row is not None:
        try:
            running = _Running(id=row[0], weights=check_weights(row[1]), default_arm=row[2])
        except ValueError:
            running = None  # weights edited into nonsense outside the service: serve as if none ran
    if len(_running_cache) >= _RUNNING_CACHE_MAX:
        _running_cache.clear()
    _running_cache[store_id] = (now + float(settings.RECS_STORE_CACHE_SECONDS), running)
    return running


def clear_experiment_cache() -> None:
    """Forget the running experiments cached by this process (tests; a change otherwise waits the store TTL)."""
    _running_cache.clear()


def get_arm(*, store_id: int, session_id: str) -> ArmChoice | None:
    """The arm for this store's visitor (None when no experiment runs); no session id: the default arm, uncounted."""
    running = _running_experiment(store_id)
    if running is None:
        return None
    if not session_id:
        return ArmChoice(arm=running.default_arm, experiment_id=running.id, counted=False)
    arm = assign_arm(store_id=store_id, experiment_id=running.id, session_id=session_id, weights=running.weights)
    return ArmChoice(arm=arm, experiment_id=running.id, counted=True)


@dataclass(frozen=True)
class WidgetSettings:
    """How the widget shows a placement: sent with the answer as `settings`."""

    title: str
    layout: str
    count: int
    anonymous_events: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "layout": self.layout,
            "count": self.count,
            "anonymous_events": self.anonymous_events,
        }


DEFAULT_TITLES: Final[dict[str, str]] = {
    Placement.PRODUCT: "You may also like",
    Placement.CART: "Goes well with your cart",
    Placement.HOME: "Popular right now",
}


def get_widget_settings(*, store_id: int, placement: str) -> WidgetSettings:
    """The store's settings for a placement, or the defaults when it has none."""
    row = (
        PlacementSettings.objects.filter(store_id=store_id, placement=placement)
        .values_list("title", "layout", "count", "anonymous_events")
        .first()
    )
    default_title = DEFAULT_TITLES.get(placement, "")
    if row is None:
        return WidgetSettings(title=default_title, layout="grid", count=DEFAULT_COUNT, anonymous_events=True)
    title, layout, count, anonymous = row
    return WidgetSettings(title=title or default_title, layout=layout, count=count, anonymous_events=anonymous)
