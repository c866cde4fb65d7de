"""How the reference validator scores miners' answers, picks the one the gateway gets, and keeps scores.

Per answer (BITRECS_PROTOCOL.md §4, extended where the public README promises more than v1 does):

* **validity** gates everything: HTTP success, exactly `num_results` strict-JSON objects with string
  `sku`, `name`, `reason` and a `price`, SKUs from the request's catalog, unique, not the query. An
  invalid answer scores 0, as every public penalty does.
* **latency**: `0.80 - 0.05 * t` with `t` the dendrite's measured seconds (the public reward).
* **diversity** of the list: `1 - mean pairwise Jaccard` of the result names' word sets, so five colour
  variants of one tee earn less than a tee, a cap and jeans; worth up to `DIVERSITY_WEIGHT`.
* **agreement** with the other valid miners of the same request: mean Jaccard of SKU sets; worth up to
  `AGREEMENT_WEIGHT`. One valid answer alone has nothing to agree with and gets 0 here.
* **conversions**: the public `calculate_miner_boost` over the storefront actions the gateway reports
  for the miner's hotkey (`GET {proxy}/miner/stats/from/{from}/to/{to}`), at most `MAX_BOOST`.

Winner ("consensus", §3 step 6): among the valid answers, the `top_n` most alike by pairwise Jaccard;
of those, the highest reward rather than the public validator's uniform random pick. With fewer than two
valid answers, the best reward wins.

Scores are a moving average over the miners asked in a request (`alpha = 0.1`; a miner that failed
gets 0 for that step; miners not asked keep their score); a request where every reward is 0 updates
nothing, and a uid whose hotkey changed starts again from 0. Weights are the scores normalised to sum 1.
"""

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Final

from subnet.answers import find_sku_problem
from subnet.protocol import BitrecsRequest
from subnet.types import ActionType, decode_results
from subnet.validator.catalog import CatalogEntry
from subnet.validator.miners import MinerAnswer

BASE_REWARD: Final = 0.80
ALPHA_TIME_DECAY: Final = 0.05
DIVERSITY_WEIGHT: Final = 0.10
AGREEMENT_WEIGHT: Final = 0.10
BASE_BOOST: Final = 1 / 256
MAX_BOOST: Final = 0.20
ACTION_WEIGHTS: Final[Mapping[str, float]] = {
    ActionType.VIEW_PRODUCT: 0.05,
    ActionType.ADD_TO_CART: 0.10,
    ActionType.PURCHASE: 0.85,
}
MOVING_AVERAGE_ALPHA: Final = 0.1

_RESULT_KEYS: Final = frozenset({"sku", "name", "price", "reason"})
_WORD_RE: Final = re.compile(r"[a-z0-9]{2,}")


@dataclass(frozen=True)
class Reward:
    """One miner's answer to one request, checked and scored; `total` is 0 when `problem` is set."""

    uid: int
    hotkey: str
    problem: str = ""
    latency: float = 0.0
    diversity: float = 0.0
    agreement: float = 0.0
    boost: float = 0.0
    total: float = 0.0
    answer: MinerAnswer | None = None
    results: tuple[dict[str, Any], ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problem

    @property
    def skus(self) -> frozenset[str]:
        return frozenset(str(item["sku"]) for item in self.results)


def parse_answer(
    *, answer: MinerAnswer, request: BitrecsRequest, known_skus: frozenset[str], network: str
) -> tuple[list[dict[str, Any]], str]:
    """Return the answer's results and "" if it is a valid list for the request, else `([], problem)`."""
    if answer.error:
        return [], answer.error
    raw = list(answer.results)
    if network == "localnet":
        raw = [item.replace("'", '"') for item in raw]
    try:
        results = decode_results(results=raw)
    except ValueError:
        return [], "malformed_json"
    for item in results:
        if not item.keys() >= _RESULT_KEYS or not all(isinstance(item[key], str) for key in ("sku", "name", "reason")):
            return [], "malformed_item"
        if not isinstance(item["price"], str | int | float) or isinstance(item["price"], bool):
            return [], "malformed_item"
    problem = find_sku_problem(
        skus=[item["sku"] for item in results],
        query_sku=request.query or "",
        num_results=request.num_results,
        is_known=known_skus.__contains__,
    )
    if problem is not None:
        return [], problem[0]
    return results, ""


def jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def list_diversity(names: Sequence[str]) -> float:
    """1 - the mean pairwise Jaccard similarity of the names' word sets (1.0 for fewer than two names)."""
    words = [frozenset(_WORD_RE.findall(name.lower())) for name in names]
    pairs = list(combinations(words, 2))
    if not pairs:
        return 1.0
    return 1.0 - math.fsum(jaccard(a, b) for a, b in pairs) / len(pairs)


def conversion_boost(*, hotkey: str, actions: Mapping[str, float]) -> float:
    """The public `calculate_miner_boost`: the hotkey's weighted action total, squashed into [0, MAX_BOOST].

    `actions` maps a lower-cased hotkey to its weighted total (0.05 per view, 0.10 per add to cart,
    0.85 per purchase), as `action_totals` builds it.
    """
    total = actions.get(hotkey.lower(), 0.0)
    if total > BASE_BOOST:
        total = MAX_BOOST / (1 + math.exp(-total + BASE_BOOST))
    return min(max(total, 0.0), MAX_BOOST)


def action_totals(actions: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Weighted action totals by lower-cased hotkey; items without a known action or a string hotkey are skipped."""
    totals: dict[str, float] = {}
    for action in actions:
        hotkey, kind = action.get("hot_key"), action.get("action")
        if not isinstance(hotkey, str) or not hotkey or kind not in ACTION_WEIGHTS:
            continue
        key = hotkey.lower()
        totals[key] = totals.get(key, 0.0) + ACTION_WEIGHTS[str(kind)]
    return totals


def score_answers(
    *,
    answers: Sequence[MinerAnswer],
    request: BitrecsRequest,
    catalog: Sequence[CatalogEntry],
    network: str,
    actions: Mapping[str, float] | None = None,
) -> list[Reward]:
    """Score every answer of one request (failed ones included, at 0), in the order given."""
    known = frozenset(entry.sku for entry in catalog)
    parsed = [
        (answer, *parse_answer(answer=answer, request=request, known_skus=known, network=network)) for answer in answers
    ]
    sku_sets = {
        index: frozenset(str(item["sku"]) for item in results)
        for index, (_, results, problem) in enumerate(parsed)
        if not problem
    }
    rewards = []
    for index, (answer, results, problem) in enumerate(parsed):
        if problem:
            rewards.append(Reward(uid=answer.uid, hotkey=answer.hotkey, problem=problem, answer=answer))
            continue
        latency = max(0.0, BASE_REWARD - ALPHA_TIME_DECAY * answer.latency_seconds)
        diversity = list_diversity([str(item["name"]) for item in results])
        peers = [skus for other, skus in sku_sets.items() if other != index]
        agreement = math.fsum(jaccard(sku_sets[index], skus) for skus in peers) / len(peers) if peers else 0.0
        boost = conversion_boost(hotkey=answer.hotkey, actions=actions or {})
        total = latency + DIVERSITY_WEIGHT * diversity + AGREEMENT_WEIGHT * agreement + boost
        rewards.append(
            Reward(
                uid=answer.uid,
                hotkey=answer.hotkey,
                latency=latency,
                diversity=diversity,
                agreement=agreement,
                boost=boost,
                total=total,
                answer=answer,
                results=tuple(results),
            )
        )
    return rewards


def pick_winner(rewards: Sequence[Reward]) -> Reward | None:
    """The answer the gateway gets: the best reward among the most alike valid answers (module docstring)."""
    valid = [reward for reward in rewards if reward.valid and reward.total > 0]
    if not valid:
        return None
    if len(valid) < 2:
        return valid[0]
    top_n = 2 if len(valid) < 4 else max(2, min(5, len(valid) // 3))
    pairs = sorted(
        ((jaccard(a.skus, b.skus), i, j) for (i, a), (j, b) in combinations(enumerate(valid), 2)),
        reverse=True,
    )
    chosen: list[int] = []
    for _, i, j in pairs:
        for index in (i, j):
            if index not in chosen and len(chosen) < top_n:
                chosen.append(index)
        if len(chosen) >= top_n:
            break
    # Highest total; ties go to the lower uid, so the same answers always give the same winner.
    return max((valid[index] for index in chosen), key=lambda reward: (reward.total, -reward.uid))


@dataclass
class Standing:
    """A miner's moving-average score and counts, as kept by the validator."""

    hotkey: str
    score: float = 0.0
    answers: int = 0
    valid_answers: int = 0
    last_reward: float = 0.0


@dataclass
class ScoreBoard:
    """Moving-average scores by uid, safe to update from the API's worker threads."""

    alpha: float = MOVING_AVERAGE_ALPHA
    standings: dict[int, Standing] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")

    def update(self, rewards: Sequence[Reward]) -> bool:
        """Fold one request's rewards in; returns False (nothing changed) when every reward is 0."""
        if not any(reward.total > 0 for reward in rewards):
            return False
        with self._lock:
            for reward in rewards:
                standing = self.standings.get(reward.uid)
                if standing is None or standing.hotkey != reward.hotkey:
                    standing = self.standings[reward.uid] = Standing(hotkey=reward.hotkey)
                standing.score = self.alpha * reward.total + (1 - self.alpha) * standing.score
                standing.answers += 1
                standing.valid_answers += reward.valid
                standing.last_reward = reward.total
        return True

    def snapshot(self) -> dict[int, Standing]:
        with self._lock:
            return {uid: Standing(**vars(standing)) for uid, standing in sorted(self.standings.items())}

    def weights(self) -> dict[int, float]:
        """Scores normalised to sum 1 (zeros left out); empty when every score is 0."""
        with self._lock:
            scores = {uid: standing.score for uid, standing in self.standings.items() if standing.score > 0}
        total = math.fsum(scores.values())
        return {uid: score / total for uid, score in sorted(scores.items())} if total > 0 else {}
