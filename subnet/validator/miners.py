"""The fan-out from the validator to miners, behind one interface, and an offline in-process pool.

`MinerPool.query(request)` sends one request (context already rewritten, null fields made "") to the
miners of the pool and returns their answers. The bittensor dendrite implementation comes with the
local chain; `OfflineMinerPool` answers in-process with text similarity over the request's context,
deterministically, so the `/rec` API works end to end without miners.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bittensor_wallet import Keypair

from subnet.miner.strategies import OFFLINE_MODEL, context_entries, recommend_similar
from subnet.protocol import BitrecsRequest
from subnet.types import encode_result, format_created_at

# The similarity strategy lives in `subnet.miner.strategies` (shared with the reference miner);
# re-exported here so existing imports keep working.
__all__ = [
    "OFFLINE_MODEL",
    "MinerAnswer",
    "MinerPool",
    "OfflineMiner",
    "OfflineMinerPool",
    "offline_pool",
    "recommend_similar",
]


@dataclass(frozen=True)
class MinerAnswer:
    """One miner's answer: `results` are the strict-JSON strings of the synapse, as sent.

    A miner that was asked but gave no usable response (timeout, refusal, HTTP error) is reported too,
    with empty results and `error` saying what happened, so the validator can score it 0.
    """

    uid: int
    hotkey: str
    query: str
    created_at: str
    results: tuple[str, ...]
    models_used: tuple[str, ...]
    latency_seconds: float = 0.0
    error: str = ""


class MinerPool(Protocol):
    def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
        """Return one answer per miner asked (with `error` set for a miner that failed or timed out)."""


@dataclass(frozen=True)
class OfflineMiner:
    uid: int
    hotkey: str
    model: str = OFFLINE_MODEL


class OfflineMinerPool:
    """Miners simulated in-process: each answers with the products whose names are most like the query's."""

    def __init__(self, miners: Sequence[OfflineMiner]) -> None:
        if not miners:
            raise ValueError("an offline pool needs at least one miner")
        self.miners = tuple(miners)

    def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
        entries = context_entries(request.context or "")
        picks = recommend_similar(entries=entries, query=request.query or "", limit=request.num_results)
        created_at = format_created_at(when=datetime.now(UTC))
        return [
            MinerAnswer(
                uid=miner.uid,
                hotkey=miner.hotkey,
                query=request.query or "",
                created_at=created_at,
                results=tuple(encode_result(item=item) for item in picks),
                models_used=(miner.model,),
            )
            for miner in self.miners
        ]


def offline_pool(*, count: int = 1) -> OfflineMinerPool:
    """Return `count` offline miners, uids 1..count, with fixed dev hotkeys (`//bitrecs-offline-miner-<uid>`)."""
    return OfflineMinerPool(
        [
            OfflineMiner(uid=uid, hotkey=Keypair.create_from_uri(f"//bitrecs-offline-miner-{uid}").ss58_address)
            for uid in range(1, count + 1)
        ]
    )
