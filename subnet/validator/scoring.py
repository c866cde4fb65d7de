"""How the reference validator scores miners, picks the answer the gateway gets, and keeps scores.

The reward (issue 15): pay for better recommendations, not for copying ours fast.

Per answer, to live requests and to probes alike:

* **validity** gate: HTTP success, exactly `num_results` strict-JSON objects with string `sku`, `name`,
  `reason` and a `price`, SKUs from the request's catalog, unique, not the query, and **within the
  latency budget** `LATENCY_LIMIT_SECONDS` (3 s, the storefront's): a late list is never shown, so it
  is worth nothing. An invalid answer scores 0 and counts against the miner's validity.
* **speed** `s = 1 - t / 3` for a valid answer (t the dendrite's measured seconds), only ever a small
  multiplier of quality (below), never a term of its own.
* **quality** from ground truth: on a probe (a case of what a shopper went on to buy, mixed into the
  traffic shaped exactly like a live request, `subnet.validator.probes`), the answer's NDCG@k against
  the bought SKUs, k = `num_results`; an invalid answer to a probe has NDCG 0.

Per miner (its standing; moving averages as before, one step per answer):

    validity  V = EMA(1 if valid else 0)                 over every answer (alpha 0.1)
    speed     S = EMA(s)                                 over valid answers (alpha 0.1)
    probes    P = EMA(NDCG@k)                            over probe answers (alpha QUALITY_ALPHA)
    convert   C = min(1, conversions per impression / CONVERSION_RATE_SCALE), once the validator has
                  served IMPRESSIONS_FOR_CONVERSIONS of the miner's answers, else unknown
    quality   Q = P                                      when C is unknown
              Q = (1 - CONVERSION_WEIGHT) * P + CONVERSION_WEIGHT * C     otherwise
    score       = V * Q * (1 + LATENCY_BONUS * S)

and weights are the scores normalised to sum 1, once the validator has quality evidence (some miner's score is
above 0: a probe answered with a hit, or conversions). Before that (a validator whose gateway has no probes for
it yet, and no conversions), the **bootstrap** weights are `V` normalised: an even split among the miners that
answer validly within the latency budget, nothing to invalid or late ones. Why not no weights (the public
validator's behaviour without traffic) or today's latency reward: setting none pays nobody and leaves the
validator looking inactive on chain; paying speed would pay the fast copy of our pool over an honest slow model,
which is the very thing this reward exists to stop. Without evidence of quality nobody is preferred; the first
probe switches to `V * Q * (1 + LATENCY_BONUS * S)`, and saved standings carry the evidence across restarts.

Why this shape:

* Quality is the only thing that earns: a miner with NDCG 0 scores 0 however fast and valid it is. The
  gateway shuffles the context and mixes in weaker candidates (`subnet.services.build_request_pool`),
  so returning `context[1..N]` is a random pick, and a random pick has the NDCG of chance.
* Validity and latency multiply instead of adding: invalid miners get 0, and being fast can add at
  most `LATENCY_BONUS` (10 %) to a quality, so an honest LLM at 2.5 s keeps 92 % of what the same
  answers earn at 0 s, where today's `0.80 - 0.05 t` took 0.125 off everybody, more than any quality
  signal could return.
* Conversions (views, carts, purchases the gateway attributes to the miner, `GET .../miner/stats/...`)
  are counted per impression (the validator's own count of the miner's answers it returned) so a miner
  is not paid for traffic volume, and squashed so that a handful of purchases cannot outweigh the probes.
* Agreement is left out of the score: it pays herding (every lazy miner agrees with every other, and a
  copycat agrees with whoever it copies). Name diversity is left out too: a random list is the most
  "diverse" list there is. Both only ever appeared as additive terms, which is exactly what made
  randomness and herding pay. Ground truth and conversions already measure whether a varied list sells.
* A copycat that replays another miner's earlier answer for the same query earns at most what the
  copied answer earns on the probes where the query recurs, and nothing where the probe's context or
  buyer differ; it never earns more than the miner it copies.

The answer the gateway gets: among the valid in-time answers, the one of the miner with the best
standing score (quality-ranked, so no consensus among lazy miners can outvote a good one); ties and
unknown miners go to the best pick among the most alike answers, as before.

`legacy_total` keeps today's formula (`0.80 - 0.05 t` + 0.10 diversity + 0.10 agreement + the public
conversion boost) for comparison: `bench/incentive_sim.py` reports both on the same answers.
"""

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, Final

from subnet.answers import find_sku_problem
from subnet.protocol import BitrecsRequest
from subnet.types import ActionType, decode_results
from subnet.validator.catalog import CatalogEntry
from subnet.validator.miners import MinerAnswer

# Today's (public) reward, kept as `legacy_total`.
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

# The reward of issue 15 (module docstring).
LATENCY_LIMIT_SECONDS: Final = 3.0
LATENCY_BONUS: Final = 0.10
# Probe NDCG is a noisy 0-or-something per answer: a longer memory than validity's.
QUALITY_ALPHA: Final = 0.03
CONVERSION_WEIGHT: Final = 0.30
# Weighted actions per impression that count as the best possible (about one purchase per 17 impressions).
CONVERSION_RATE_SCALE: Final = 0.05
IMPRESSIONS_FOR_CONVERSIONS: Final = 100

_RESULT_KEYS: Final = frozenset({"sku", "name", "price", "reason"})
_WORD_RE: Final = re.compile(r"[a-z0-9]{2,}")


@dataclass(frozen=True)
class Reward:
    """One miner's answer to one request, checked and scored; `total` is 0 when `problem` is set.

    `total` is the answer's reward under the formula of the module docstring: `NDCG * (1 + LATENCY_BONUS
    * speed)` on a probe (`ndcg` set), 0 on a live request, whose answers count for validity and speed only.
    `legacy` is today's reward of the same answer (`latency + diversity + agreement + boost` parts).
    """

    uid: int
    hotkey: str
    problem: str = ""
    speed: float = 0.0
    ndcg: float | None = None
    total: float = 0.0
    latency: float = 0.0
    diversity: float = 0.0
    agreement: float = 0.0
    boost: float = 0.0
    legacy: float = 0.0
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


def ndcg_at_k(*, ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Binary-relevance NDCG@k of a ranked SKU list: sum of 1/log2(rank + 2) over hits, over the ideal sum."""
    wanted = {sku.casefold() for sku in relevant}
    if not wanted or k <= 0:
        return 0.0
    dcg = math.fsum(1 / math.log2(rank + 2) for rank, sku in enumerate(ranked[:k]) if sku.casefold() in wanted)
    ideal = math.fsum(1 / math.log2(rank + 2) for rank in range(min(len(wanted), k)))
    return dcg / ideal


def chance_ndcg(*, candidates: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Exact expected NDCG@k of k distinct candidates drawn uniformly at random, in random order (a pick that knows
    nothing but the candidates): each relevant candidate lands on each of the first k ranks with chance 1/len."""
    wanted = {sku.casefold() for sku in relevant}
    present = sum(1 for sku in {sku.casefold() for sku in candidates} if sku in wanted)
    if not present or k <= 0:
        return 0.0
    distinct = len({sku.casefold() for sku in candidates})
    gains = math.fsum(1 / math.log2(rank + 2) for rank in range(min(k, distinct)))
    ideal = math.fsum(1 / math.log2(rank + 2) for rank in range(min(len(wanted), k)))
    return present * gains / distinct / ideal


def speed_of(latency_seconds: float) -> float:
    """`1 - t / LATENCY_LIMIT_SECONDS`, clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - latency_seconds / LATENCY_LIMIT_SECONDS))


def conversion_boost(*, hotkey: str, actions: Mapping[str, float]) -> float:
    """The public `calculate_miner_boost`: the hotkey's weighted action total, squashed into [0, MAX_BOOST].

    `actions` maps a lower-cased hotkey to its weighted total (0.05 per view, 0.10 per add to cart,
    0.85 per purchase), as `action_totals` builds it.
    """
    total = actions.get(hotkey.lower(), 0.0)
    if total > BASE_BOOST:
        total = MAX_BOOST / (1 + math.exp(-total + BASE_BOOST))
    return min(max(total, 0.0), MAX_BOOST)


def conversion_quality(*, hotkey: str, actions: Mapping[str, float], impressions: int) -> float | None:
    """C of the module docstring: weighted actions per impression over CONVERSION_RATE_SCALE, at most 1;
    None (unknown) while the miner has fewer than IMPRESSIONS_FOR_CONVERSIONS impressions."""
    if impressions < IMPRESSIONS_FOR_CONVERSIONS:
        return None
    rate = max(0.0, actions.get(hotkey.lower(), 0.0)) / impressions
    return min(1.0, rate / CONVERSION_RATE_SCALE)


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
    relevant: Sequence[str] | None = None,
) -> list[Reward]:
    """Score every answer of one request (failed ones included, at 0), in the order given.

    relevant: the SKUs the shopper went on to buy when the request is a probe (None for a live request).
    """
    known = frozenset(entry.sku for entry in catalog)
    parsed = [
        (answer, *parse_answer(answer=answer, request=request, known_skus=known, network=network)) for answer in answers
    ]
    # Today's formula has no latency gate: agreement is among every well-formed list, late ones included.
    sku_sets = {
        index: frozenset(str(item["sku"]) for item in results)
        for index, (_, results, problem) in enumerate(parsed)
        if not problem
    }
    rewards = []
    for index, (answer, results, problem) in enumerate(parsed):
        if problem:
            rewards.append(
                Reward(
                    uid=answer.uid,
                    hotkey=answer.hotkey,
                    problem=problem,
                    ndcg=None if relevant is None else 0.0,
                    answer=answer,
                )
            )
            continue
        latency = max(0.0, BASE_REWARD - ALPHA_TIME_DECAY * answer.latency_seconds)
        diversity = list_diversity([str(item["name"]) for item in results])
        peers = [skus for other, skus in sku_sets.items() if other != index]
        agreement = math.fsum(jaccard(sku_sets[index], skus) for skus in peers) / len(peers) if peers else 0.0
        boost = conversion_boost(hotkey=answer.hotkey, actions=actions or {})
        legacy = latency + DIVERSITY_WEIGHT * diversity + AGREEMENT_WEIGHT * agreement + boost
        parts: dict[str, Any] = {
            "latency": latency,
            "diversity": diversity,
            "agreement": agreement,
            "boost": boost,
            "legacy": legacy,
            "answer": answer,
        }
        if answer.latency_seconds > LATENCY_LIMIT_SECONDS:
            ndcg = None if relevant is None else 0.0
            rewards.append(Reward(uid=answer.uid, hotkey=answer.hotkey, problem="too_slow", ndcg=ndcg, **parts))
            continue
        speed = speed_of(answer.latency_seconds)
        ndcg = None
        if relevant is not None:
            ranked = [str(item["sku"]) for item in results]
            ndcg = ndcg_at_k(ranked=ranked, relevant=relevant, k=request.num_results)
        rewards.append(
            Reward(
                uid=answer.uid,
                hotkey=answer.hotkey,
                speed=speed,
                ndcg=ndcg,
                total=(ndcg or 0.0) * (1 + LATENCY_BONUS * speed),
                results=tuple(results),
                **parts,
            )
        )
    return rewards


def legacy_total(reward: Reward) -> float:
    """Today's reward of the answer: `0.80 - 0.05 t` + diversity + agreement + boost, 0 when malformed."""
    return reward.legacy


def pick_winner(rewards: Sequence[Reward], *, scores: Mapping[int, float] | None = None) -> Reward | None:
    """The answer the gateway gets: the valid answer of the best-scored miner (module docstring).

    scores: the miners' standing scores by uid; without a single best one, the best (today's reward) among
    the most alike valid answers.
    """
    valid = [reward for reward in rewards if reward.valid]
    if not valid:
        return None
    known = scores or {}
    best = max(known.get(reward.uid, 0.0) for reward in valid)
    if best > 0:
        valid = [reward for reward in valid if known.get(reward.uid, 0.0) == best]
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
    # Highest reward; ties go to the lower uid, so the same answers always give the same winner.
    return max((valid[index] for index in chosen), key=lambda reward: (reward.legacy, -reward.uid))


@dataclass
class Standing:
    """A miner's moving averages and counts, as kept by the validator; `score` is `miner_score` of them."""

    hotkey: str
    score: float = 0.0
    answers: int = 0
    valid_answers: int = 0
    last_reward: float = 0.0
    validity: float = 0.0
    speed: float = 0.0
    quality: float = 0.0
    probes: int = 0
    served: int = 0


def miner_score(*, standing: Standing, actions: Mapping[str, float] | None = None) -> float:
    """`V * Q * (1 + LATENCY_BONUS * S)` of the module docstring, from the standing and the gateway's actions."""
    conversions = conversion_quality(hotkey=standing.hotkey, actions=actions or {}, impressions=standing.served)
    quality = (
        standing.quality
        if conversions is None
        else (1 - CONVERSION_WEIGHT) * standing.quality + CONVERSION_WEIGHT * conversions
    )
    return standing.validity * quality * (1 + LATENCY_BONUS * standing.speed)


def _moving(average: float, value: float, alpha: float) -> float:
    return alpha * value + (1 - alpha) * average


@dataclass
class ScoreBoard:
    """Moving averages by uid, safe to update from the API's worker threads (module docstring)."""

    alpha: float = MOVING_AVERAGE_ALPHA
    quality_alpha: float = QUALITY_ALPHA
    standings: dict[int, Standing] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0 < self.alpha <= 1 and 0 < self.quality_alpha <= 1):
            raise ValueError("alpha must be in (0, 1]")

    def _standing(self, reward: Reward) -> Standing:
        standing = self.standings.get(reward.uid)
        if standing is None or standing.hotkey != reward.hotkey:
            standing = self.standings[reward.uid] = Standing(hotkey=reward.hotkey)
        return standing

    def update(
        self, rewards: Sequence[Reward], *, probe: bool = False, actions: Mapping[str, float] | None = None
    ) -> bool:
        """Fold one request's rewards in (`probe`: its answers carry NDCG); returns False (nothing changed) when
        no answer was valid, which says more about the request or the validator than about the miners."""
        if not any(reward.valid for reward in rewards):
            return False
        with self._lock:
            for reward in rewards:
                standing = self._standing(reward)
                standing.answers += 1
                standing.valid_answers += reward.valid
                standing.validity = _moving(standing.validity, 1.0 if reward.valid else 0.0, self.alpha)
                if reward.valid:
                    standing.speed = _moving(standing.speed, reward.speed, self.alpha)
                if probe:
                    standing.quality = _moving(standing.quality, reward.ndcg or 0.0, self.quality_alpha)
                    standing.probes += 1
                standing.last_reward = reward.total
                standing.score = miner_score(standing=standing, actions=actions)
        return True

    def served(self, reward: Reward) -> None:
        """Count one impression: the validator returned this miner's answer to the gateway."""
        with self._lock:
            self._standing(reward).served += 1

    def rescore(self, *, actions: Mapping[str, float] | None) -> None:
        """Recompute every score with the gateway's latest actions."""
        with self._lock:
            for standing in self.standings.values():
                standing.score = miner_score(standing=standing, actions=actions)

    def scores(self) -> dict[int, float]:
        with self._lock:
            return {uid: standing.score for uid, standing in self.standings.items()}

    def snapshot(self) -> dict[int, Standing]:
        with self._lock:
            return {uid: replace(standing) for uid, standing in sorted(self.standings.items())}

    def weights(self) -> dict[int, float]:
        """Scores normalised to sum 1 (zeros left out); while every score is 0 (no quality evidence yet), validity
        normalised (the bootstrap weights of the module docstring); empty when no miner has either."""
        with self._lock:
            scores = {uid: standing.score for uid, standing in self.standings.items()}
            validity = {uid: standing.validity for uid, standing in self.standings.items()}
        return normalised(scores) or normalised(validity)


def normalised(scores: Mapping[int, float]) -> dict[int, float]:
    """Positive scores divided by their sum, by uid; empty when none is positive."""
    positive = {uid: score for uid, score in scores.items() if score > 0}
    total = math.fsum(positive.values())
    return {uid: score / total for uid, score in sorted(positive.items())} if total > 0 else {}


@dataclass
class LegacyScoreBoard:
    """Today's moving average: `alpha * legacy reward + (1 - alpha) * score` per asked miner, for comparison."""

    alpha: float = MOVING_AVERAGE_ALPHA
    scores: dict[int, float] = field(default_factory=dict)

    def update(self, rewards: Sequence[Reward]) -> bool:
        """Fold one request in; nothing changes when every legacy reward is 0 (as before)."""
        if not any(reward.legacy > 0 for reward in rewards):
            return False
        for reward in rewards:
            self.scores[reward.uid] = _moving(self.scores.get(reward.uid, 0.0), reward.legacy, self.alpha)
        return True

    def weights(self) -> dict[int, float]:
        return normalised(self.scores)
