"""The validator's scores between requests: folding rewards in, saving standings, setting weights when due.

`ScoreKeeper.record(rewards)` runs after every scored request (the public validator's `update_scores`
then `sync()`); once `weights_interval` seconds have passed since the last sync it saves the standings
(`MinerScore`) and sets the normalised scores as its weights on the chain. Only one thread syncs at a
time; the others go on answering. `LocalChainWeights` is the local chain in the database;
`subnet.subtensor_chain.SubtensorWeights` is bittensor's subtensor (test/finney). Both keep the standings in
`MinerScore` through `load_standings` / `save_standings`.
"""

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from subnet import chain
from subnet.models import ChainNeuron, MinerScore, ScoreRound
from subnet.standings import percentile
from subnet.validator.scoring import Reward, ScoreBoard, Standing

logger = logging.getLogger(__name__)

# How often weights are set: the public default is every 500 blocks (100 minutes); the local chain
# has no blocks, and a demo wants to see weights move.
DEFAULT_WEIGHTS_INTERVAL: Final = 60.0
_MOVING_FIELDS: Final = ("validity", "speed", "quality", "probes", "served")
# Latencies kept per miner between two rounds (for p50/p99): the most recent ones when a round is busier.
MAX_ROUND_LATENCIES: Final = 2_000


@dataclass
class RoundTally:
    """What one miner's answers did between two weight settings: rejections by reason, agreement, latencies."""

    hotkey: str = ""
    answers: int = 0
    valid: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    agreements: list[float] = field(default_factory=list)
    latencies_ms: list[int] = field(default_factory=list)

    def add(self, reward: Reward) -> None:
        """Count one answer (its rejection reason, or its agreement with peers and its latency)."""
        self.answers += 1
        if reward.problem:
            self.problems[reward.problem] += 1
            return
        self.valid += 1
        self.agreements.append(reward.agreement)
        if reward.answer is not None:
            self.latencies_ms.append(round(reward.answer.latency_seconds * 1000))
            del self.latencies_ms[:-MAX_ROUND_LATENCIES]


def record_rounds(
    *,
    netuid: int,
    validator_hotkey: str,
    standings: Mapping[int, Standing],
    weights: Mapping[int, float],
    tallies: Mapping[int, RoundTally],
) -> list[ScoreRound]:
    """Append one `ScoreRound` per miner for a weight setting: score, weight, rank (1 = best) and the round's tally."""
    now = timezone.now()
    ranked = sorted(standings.items(), key=lambda item: (-item[1].score, item[0]))
    rows = []
    for rank, (uid, standing) in enumerate(ranked, start=1):
        tally = tallies.get(uid)
        if tally is None or tally.hotkey != standing.hotkey:
            tally = RoundTally(hotkey=standing.hotkey)
        rows.append(
            ScoreRound(
                netuid=netuid,
                validator_hotkey=validator_hotkey,
                miner_uid=uid,
                miner_hotkey=standing.hotkey,
                score=standing.score,
                weight=weights.get(uid, 0.0),
                rank=rank,
                answers=standing.answers,
                valid_answers=standing.valid_answers,
                validity=standing.validity,
                quality=standing.quality,
                round_answers=tally.answers,
                round_valid=tally.valid,
                problems=dict(sorted(tally.problems.items())),
                agreement=math.fsum(tally.agreements) / len(tally.agreements) if tally.agreements else None,
                latency_p50_ms=percentile(tally.latencies_ms, 0.5),
                latency_p99_ms=percentile(tally.latencies_ms, 0.99),
                recorded_at=now,
            )
        )
    return ScoreRound.objects.bulk_create(rows)


RoundHistory = Callable[..., object]


class WeightSink(Protocol):
    def load(self) -> dict[int, Standing]:
        """The standings saved by an earlier run, for miners still registered under the same hotkey."""

    def save(self, *, standings: Mapping[int, Standing], weights: Mapping[int, float]) -> None:
        """Save the standings and set `weights` (uid -> weight, summing to 1) on the chain."""


def load_standings(*, netuid: int, validator_hotkey: str, current: Mapping[int, str]) -> dict[int, Standing]:
    """The validator's saved standings whose uid still has the same hotkey in `current` (uid -> hotkey).

    Hotkey churn: a uid that changed hands (or left) starts again from 0, as on a metagraph resync (§4).
    """
    rows = MinerScore.objects.filter(netuid=netuid, validator_hotkey=validator_hotkey)
    return {
        row.miner_uid: Standing(
            hotkey=row.miner_hotkey,
            score=row.score,
            answers=row.answers,
            valid_answers=row.valid_answers,
            last_reward=row.last_reward,
            validity=row.validity,
            speed=row.speed,
            quality=row.quality,
            probes=row.probes,
            served=row.served,
        )
        for row in rows
        if current.get(row.miner_uid) == row.miner_hotkey
    }


def save_standings(*, netuid: int, validator_hotkey: str, standings: Mapping[int, Standing]) -> None:
    """Replace the validator's saved standings (`MinerScore`) with `standings`."""
    now = timezone.now()
    with transaction.atomic():
        MinerScore.objects.filter(netuid=netuid, validator_hotkey=validator_hotkey).exclude(
            miner_uid__in=list(standings)
        ).delete()
        MinerScore.objects.bulk_create(
            [
                MinerScore(
                    netuid=netuid,
                    validator_hotkey=validator_hotkey,
                    miner_uid=uid,
                    miner_hotkey=standing.hotkey,
                    score=standing.score,
                    answers=standing.answers,
                    valid_answers=standing.valid_answers,
                    last_reward=standing.last_reward,
                    validity=standing.validity,
                    speed=standing.speed,
                    quality=standing.quality,
                    probes=standing.probes,
                    served=standing.served,
                    updated_at=now,
                )
                for uid, standing in standings.items()
            ],
            update_conflicts=True,
            unique_fields=["netuid", "validator_hotkey", "miner_uid"],
            update_fields=[
                "miner_hotkey",
                "score",
                "answers",
                "valid_answers",
                "last_reward",
                *_MOVING_FIELDS,
                "updated_at",
            ],
        )


class LocalChainWeights:
    """Standings in `MinerScore`, weights on the local chain (`subnet.chain.set_weights`)."""

    def __init__(self, *, netuid: int, validator_hotkey: str) -> None:
        self.netuid = netuid
        self.validator_hotkey = validator_hotkey

    def load(self) -> dict[int, Standing]:
        current = dict(ChainNeuron.objects.filter(netuid=self.netuid).values_list("uid", "hotkey"))
        return load_standings(netuid=self.netuid, validator_hotkey=self.validator_hotkey, current=current)

    def save(self, *, standings: Mapping[int, Standing], weights: Mapping[int, float]) -> None:
        save_standings(netuid=self.netuid, validator_hotkey=self.validator_hotkey, standings=standings)
        if weights:
            chain.set_weights(netuid=self.netuid, validator_hotkey=self.validator_hotkey, weights=weights)


class ScoreKeeper:
    """A `ScoreBoard` plus where its standings and weights go, and the actions that feed conversion scores."""

    def __init__(
        self,
        *,
        board: ScoreBoard | None = None,
        sink: WeightSink | None = None,
        actions: Callable[[], Mapping[str, float]] | None = None,
        weights_interval: float = DEFAULT_WEIGHTS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        history: RoundHistory | None = None,
    ) -> None:
        self.board = board or ScoreBoard()
        self.sink = sink
        # Called with `standings`, `weights` and `tallies` after each weight setting (e.g. `record_rounds`).
        self.history = history
        self.tallies: dict[int, RoundTally] = {}
        self._tally_lock = threading.Lock()
        self._actions = actions
        self.weights_interval = weights_interval
        self._clock = clock
        self._sync_lock = threading.Lock()
        self._last_sync = clock()
        self.steps = 0
        self.syncs = 0
        if sink is not None:
            self.board.standings.update(sink.load())

    def action_totals(self) -> Mapping[str, float]:
        return self._actions() if self._actions is not None else {}

    def record(self, rewards: Sequence[Reward], *, probe: bool = False) -> None:
        """Fold one request's rewards into the scores (`probe`: a ground-truth probe); sync when due."""
        if not self.board.update(rewards, probe=probe, actions=self.action_totals()):
            return
        with self._tally_lock:
            for reward in rewards:
                tally = self.tallies.get(reward.uid)
                if tally is None or tally.hotkey != reward.hotkey:  # a uid that changed hands starts again
                    tally = self.tallies[reward.uid] = RoundTally(hotkey=reward.hotkey)
                tally.add(reward)
        self.steps += 1
        if self.sink is not None and self._clock() - self._last_sync >= self.weights_interval:
            self.sync()

    def served(self, reward: Reward) -> None:
        """Count the answer the validator returned to the gateway (an impression, for conversions per impression)."""
        self.board.served(reward)

    def scores(self) -> dict[int, float]:
        """The miners' current scores by uid (the winner of a live request is the best-scored miner's answer)."""
        return self.board.scores()

    def sync(self) -> bool:
        """Save the standings and set weights now, unless another thread is doing it; returns whether it ran."""
        if self.sink is None or not self._sync_lock.acquire(blocking=False):
            return False
        try:
            self._last_sync = self._clock()
            self.board.rescore(actions=self.action_totals())
            weights = self.board.weights()
            try:
                self.sink.save(standings=self.board.snapshot(), weights=weights)
            except Exception as exc:  # a chain or database hiccup must not fail the request that triggered it
                logger.exception("subnet.validator_set_weights_failed")
                if isinstance(exc, DatabaseError):
                    connection.close()  # this thread opens a fresh connection next time
                return False
            self.syncs += 1
            logger.info("subnet.validator_weights_set", extra={"weights": weights, "step": self.steps})
            self._record_history(standings=self.board.snapshot(), weights=weights)
            return True
        finally:
            self._sync_lock.release()

    def _record_history(self, *, standings: Mapping[int, Standing], weights: Mapping[int, float]) -> None:
        with self._tally_lock:
            tallies, self.tallies = self.tallies, {}
        if self.history is None:
            return
        try:
            self.history(standings=standings, weights=weights, tallies=tallies)
        except Exception as exc:  # the history is for people; a failure must not stop the validator
            logger.exception("subnet.validator_history_failed")
            if isinstance(exc, DatabaseError):
                connection.close()
