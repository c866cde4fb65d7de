"""The network path on the evaluation's protocol (issue 13): `evaluate_recs`'s cases asked of a local validator and
offline miners, as the gateway asks the network, scored as `evaluate_recs` scores the engine.

The protocol is `recommendations.evaluation`'s (EVALUATION.md): per user the last item is the target and the one
before it the query; the file is imported into a throwaway store (rolled back at the end), its training part written
as the store's order history, the engine built from both as serving builds it. Then, for every case, what the
gateway does for a product page's network list (`subnet.services.ask_network_for_product`): the request pool about
the query (`build_request_pool`: the query, the engine's strongest candidates and weaker ones, shuffled), sent signed
to a validator on loopback (`subnet.validator.app`, the real `/rec`), which fans it out over the dendrite to offline
reference miners (real axons, `subnet.miner.neuron.MinerNeuron` without an LLM) and returns the winner's answer,
checked against the store's catalog. A failed request counts as an empty list.

Reported on the same cases, with `evaluate_rankings` (NDCG@k, HR@k, coverage@k):

* `network`: the answers the gateway got;
* `engine`: the production local list (product placement with the session, as `evaluate_recs` measures it);
* `engine_query_only`: the same without the session, which the network is never given (it is asked per product);
* `pool`: `recall` (share of targets in the pool the miners saw: the ceiling of any miner's hit rate),
  `chance_ndcg@k` (what a pick that knows nothing but the pool scores, its exact expectation), and its size.

So the network adds quality over its candidate pool when `network` beats `pool.chance_ndcg@k`, and over our own
ranking when it beats `engine_query_only`; `pool.recall` says how much the pool limits it.
"""

import random
import secrets
import socket
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from django.db import transaction

from catalog_sync.models import Product
from catalog_sync.services import import_catalog_file
from merchants.services.stores import create_store
from recommendations.engine import Placement, Recommender
from recommendations.engine.loader import build_recommender_for_store
from recommendations.evaluation import (
    EvalCase,
    EvalResult,
    build_cases,
    engine_ranker,
    evaluate_rankings,
    read_interactions,
    training_orders,
    write_training_orders,
)
from subnet.client import ValidatorClient, ValidatorError
from subnet.exceptions import AnswerRejected, CandidatePoolTooSmall
from subnet.selectors import DEFAULT_POOL_SIZE
from subnet.services import build_request_pool, request_pool_recommendations
from subnet.types import MAX_NUM_RESULTS
from subnet.validator.scoring import chance_ndcg

DEFAULT_MINERS: Final = 3  # evaluate_network's defaults too
SEED: Final = 13
NETWORK: Final = "testnet"  # the public validators' rules: strict catalog parse, context rewritten by name
_MINER_TIMEOUT_SECONDS: Final = 5.0


@dataclass(frozen=True)
class NetworkEvalResult:
    """The network's answers, the engine's lists and the pools' limits, on the same cases (module docstring)."""

    network: EvalResult
    engine: EvalResult
    engine_query_only: EvalResult
    pool_recall: float
    pool_chance_ndcg: float
    pool_size: int
    failures: dict[str, int]
    miners: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        k = self.network.k
        return {
            "network": self.network.as_dict(),
            "engine": self.engine.as_dict(),
            "engine_query_only": self.engine_query_only.as_dict(),
            "pool": {
                "recall": round(self.pool_recall, 4),
                f"chance_ndcg@{k}": round(self.pool_chance_ndcg, 4),
                "size": self.pool_size,
            },
            "failures": dict(sorted(self.failures.items())),
            "miners": self.miners,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class _Axon:
    """A miner to query (`subnet.validator.dendrite_pool.MinerAxon`), without a chain."""

    uid: int
    hotkey: str
    coldkey: str
    axon_ip: str
    axon_port: int | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_network(*, miners: int, ports: Sequence[int] | None = None) -> Iterator[ValidatorClient]:
    """A validator on loopback with `miners` offline reference miners behind it; yields the gateway's client.

    ports: the validator's then the miners' (default: free ones). Nothing touches the database: the miners are
    given to the validator directly and its scores stay in memory.
    """
    from bittensor_wallet import Keypair, Wallet

    from subnet.miner.neuron import LOOPBACK, MinerNeuron
    from subnet.signing import generate_private_key_hex, load_private_key
    from subnet.validator.app import ValidatorConfig, ValidatorServer, create_app
    from subnet.validator.dendrite_pool import DendriteMinerPool
    from subnet.validator.keeper import ScoreKeeper
    from subnet.validator.public_key import StaticPublicKey

    chosen = list(ports) if ports is not None else [_free_port() for _ in range(miners + 1)]
    if len(chosen) != miners + 1:
        raise ValueError(f"{miners + 1} ports are needed, {len(chosen)} given")
    validator_key = Keypair.create_from_uri(f"//EvaluateNetwork{uuid.uuid4().hex}")
    neurons: list[MinerNeuron] = []
    server: ValidatorServer | None = None
    with tempfile.TemporaryDirectory(prefix="bitrecs-evaluate-network-") as wallets:
        try:
            for index in range(miners):
                wallet = Wallet(name=f"miner{index}", hotkey="default", path=wallets)
                wallet.create_coldkey_from_uri(f"//EvaluateNetworkCold{index}", use_password=False, suppress=True)
                wallet.create_hotkey_from_uri(f"//EvaluateNetworkHot{index}", use_password=False, suppress=True)
                neuron = MinerNeuron(
                    wallet=wallet,
                    provider=None,
                    allowed_hotkeys=lambda: {validator_key.ss58_address},
                    uid=index,
                    port=chosen[index + 1],
                )
                neurons.append(neuron.start())
            axons = [_Axon(uid=n.uid, hotkey=n.hotkey, coldkey="", axon_ip=LOOPBACK, axon_port=n.port) for n in neurons]
            signing_hex = generate_private_key_hex()
            api_key = secrets.token_urlsafe(16)
            app = create_app(
                config=ValidatorConfig(api_key=api_key, network=NETWORK, rate_limit_per_minute=10**9),
                miner_pool=DendriteMinerPool(
                    wallet=validator_key, netuid=0, miners=lambda: axons, timeout=_MINER_TIMEOUT_SECONDS
                ),
                public_key=StaticPublicKey(load_private_key(hex_key=signing_hex).public_key()),
                keeper=ScoreKeeper(),
            )
            server = ValidatorServer(app, port=chosen[0])
            server.start()
            yield ValidatorClient(
                server.url,
                api_key,
                network=NETWORK,
                signing_key=signing_hex,
                requests_per_minute=10**9,
                max_attempts=1,
            )
        finally:
            if server is not None:
                server.stop()
            for neuron in neurons:
                neuron.stop()


class _Rollback(Exception):
    pass


def run_network_evaluation(
    *,
    path: str | Path,
    k: int = 10,
    miners: int = DEFAULT_MINERS,
    limit: int | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    seed: int = SEED,
    ports: Sequence[int] | None = None,
    progress: IO[str] | None = None,
) -> NetworkEvalResult:
    """Evaluate the network path on an interactions file (module docstring); `limit`: the first N cases only.

    seed: draws and shuffles the request pools, so the same input gives the same pools.
    """
    if not 1 <= k <= MAX_NUM_RESULTS:
        raise ValueError(f"k must be 1 to {MAX_NUM_RESULTS}: a validator asks miners for at most that many")
    if miners < 1:
        raise ValueError("at least one miner is needed")
    started = time.monotonic()
    interactions = read_interactions(path)
    cases = build_cases(interactions)
    orders = training_orders(interactions, cases)
    cases = cases[:limit] if limit is not None else cases
    outcome: dict[str, Any] = {}
    try:
        with transaction.atomic():
            store = create_store(platform="custom", domain=f"evaluate-network-{uuid.uuid4().hex[:12]}.invalid")
            import_catalog_file(store=store, path=path, fmt="amazon")
            latest = write_training_orders(store=store, orders=orders)
            engine = build_recommender_for_store(store=store, now=latest)
            products = {p.external_id: p for p in Product.objects.filter(store=store)}
            rng = random.Random(seed)  # noqa: S311 - reproducible pools, nothing secret
            network: list[list[str]] = []
            pooled: list[bool] = []
            chance: list[float] = []
            failures: Counter[str] = Counter()
            with local_network(miners=miners, ports=ports) as client:
                for number, case in enumerate(cases, start=1):
                    query = products.get(case.history[-1])
                    if query is None:
                        failures["query_not_imported"] += 1
                        network.append([])
                        pooled.append(False)
                        chance.append(0.0)
                        continue
                    pool = build_request_pool(store=store, product=query, rng=rng, size=pool_size, recommender=engine)
                    offered = [p.external_id for p in pool if p.external_id != query.external_id]
                    pooled.append(case.target in offered)
                    chance.append(chance_ndcg(candidates=offered, relevant=[case.target], k=k))
                    try:
                        answer = request_pool_recommendations(
                            client=client, store=store, product=query, pool=pool, num_results=k
                        )
                    except (ValidatorError, AnswerRejected, CandidatePoolTooSmall, ValueError) as exc:
                        failures[getattr(exc, "code", "") or type(exc).__name__] += 1
                        network.append([])
                    else:
                        network.append([item.product_id for item in answer.results])
                    if progress is not None and number % 100 == 0:
                        progress.write(f"evaluate_network: {number}/{len(cases)} cases\n")
            catalog_size = len(engine.items)
            local = engine_ranker(engine, k=k)
            outcome["network"] = evaluate_rankings(cases, network, catalog_size=catalog_size, k=k)
            outcome["engine"] = evaluate_rankings(cases, (local(c) for c in cases), catalog_size=catalog_size, k=k)
            outcome["engine_query_only"] = evaluate_rankings(
                cases, (_query_only(engine, c, k) for c in cases), catalog_size=catalog_size, k=k
            )
            outcome["pooled"], outcome["chance"], outcome["failures"] = pooled, chance, failures
            raise _Rollback
    except _Rollback:
        pass
    count = max(1, len(cases))
    return NetworkEvalResult(
        network=outcome["network"],
        engine=outcome["engine"],
        engine_query_only=outcome["engine_query_only"],
        pool_recall=sum(outcome["pooled"]) / count,
        pool_chance_ndcg=sum(outcome["chance"]) / count,
        pool_size=pool_size,
        failures=dict(outcome["failures"]),
        miners=miners,
        seconds=time.monotonic() - started,
    )


def _query_only(engine: Recommender, case: EvalCase, k: int) -> list[str]:
    results = engine.recommend(
        query_id=case.history[-1], placement=Placement.PRODUCT, exclude_ids=case.history, limit=k
    )
    return [r.id for r in results]
