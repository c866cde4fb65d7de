"""The fan-out from the validator to miners, behind one interface, and an offline in-process pool.

`MinerPool.query(request)` sends one request (context already rewritten, null fields made "") to the
miners of the pool and returns their answers. The bittensor dendrite implementation comes with the
local chain; `OfflineMinerPool` answers in-process with text similarity over the request's context,
deterministically, so the `/rec` API works end to end without miners.
"""

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from bittensor_wallet import Keypair

from subnet.protocol import BitrecsRequest
from subnet.types import encode_result, format_created_at
from subnet.validator.catalog import CatalogEntry, load_items

OFFLINE_MODEL: Final = "bitrecs/offline-text-similarity"
_WORD_RE: Final = re.compile(r"[a-z0-9]{2,}")


@dataclass(frozen=True)
class MinerAnswer:
    """One miner's answer: `results` are the strict-JSON strings of the synapse, as sent."""

    uid: int
    hotkey: str
    query: str
    created_at: str
    results: tuple[str, ...]
    models_used: tuple[str, ...]
    latency_seconds: float = 0.0


class MinerPool(Protocol):
    def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
        """Return the answers of the miners asked (none for a miner that failed or timed out)."""


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
        entries = _entries(request.context or "")
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


def _entries(context: str) -> list[CatalogEntry]:
    return [
        CatalogEntry(sku=str(item["sku"]), name=str(item.get("name") or ""), price=str(item.get("price") or ""))
        for item in load_items(context)
        if isinstance(item, dict) and item.get("sku")
    ]


def _features(text: str) -> Counter[str]:
    words = _WORD_RE.findall(text.lower())
    features: Counter[str] = Counter(f"w:{word}" for word in words)
    for word in words:
        padded = f" {word} "
        features.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return features


def recommend_similar(*, entries: Sequence[CatalogEntry], query: str, limit: int) -> list[dict[str, str]]:
    """Return up to `limit` products most like the query product (its name, or the query text when its
    SKU is not in the catalog), by TF-IDF cosine over words and character trigrams; never the query SKU,
    one per SKU, ties broken by name then SKU."""
    query_key = query.strip().casefold()
    query_entry = next((entry for entry in entries if entry.sku.casefold() == query_key), None)
    query_text = query_entry.name if query_entry else query
    unique: dict[str, CatalogEntry] = {}
    for entry in entries:
        if entry.sku.casefold() != query_key:
            unique.setdefault(entry.sku.casefold(), entry)
    candidates = list(unique.values())
    vectors = [_features(entry.name) for entry in candidates]
    document_frequency: Counter[str] = Counter()
    for vector in vectors:
        document_frequency.update(vector.keys())
    total = len(candidates) + 1

    def weighted(vector: Counter[str]) -> dict[str, float]:
        weights = {f: (1 + math.log(n)) * math.log(total / (1 + document_frequency[f])) for f, n in vector.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {f: w / norm for f, w in weights.items()}

    query_vector = weighted(_features(query_text))
    query_words = {f[2:] for f in query_vector if f.startswith("w:")}
    scored = []
    for entry, vector in zip(candidates, vectors, strict=True):
        weights = weighted(vector)
        score = sum(weight * weights.get(feature, 0.0) for feature, weight in query_vector.items())
        scored.append((-score, entry.name, entry.sku, entry))
    scored.sort(key=lambda row: row[:3])
    picks = []
    for _, _, _, entry in scored[:limit]:
        shared = sorted(query_words & set(_WORD_RE.findall(entry.name.lower())))
        reason = f"Like {query_text}: shares {', '.join(shared[:3])}" if shared else f"Goes with {query_text}"
        picks.append({"sku": entry.sku, "name": entry.name, "price": entry.price, "reason": reason})
    return picks
