"""The incentive, simulated: the validator on the local chain with miners of known strategies (issue 15).

    .venv/bin/python -m bench.incentive_sim [--rounds 240] [--seed 15] [--quick] [--port-base 9250] [--json]

On a fresh SQLite database under a temporary BITRECS_LOCAL_DIR: a store made from the shipped held-out shopper
sequences (`subnet/data/probe_sequences.json`, the UCI online retail slice): its catalog imported through the
product's own importer, half of the shoppers loaded as its order history (the engine learns from it), the other
half kept out as ground truth. Six miners serve real bittensor axons on loopback (ports `--port-base` + 1..6, the
validator's API on `--port-base`), registered on the local chain:

* good: ranks the context by co-purchases with the query over the whole shopper file, held-out purchases included
  (the issue's "probe history": knowledge no pool carries, standing for a better model than our engine), then by
  name similarity to the query (the reference miner's offline strategy);
* slow-good: the same answers, 2.5 s slow;
* lazy: the context in order (skipping the query);
* random: random valid SKUs, that is SKUs of the request's catalog, the context (BITRECS_PROTOCOL.md §3: the
  validator's check is "every SKU is in the catalog", and the catalog a validator has is the context);
* copycat: replays the list the gateway got for the same query earlier (the winner's, public on the storefront),
  kept to the SKUs of this context and topped up in context order; the context in order when it saw none;
* invalid: malformed answers (objects without name, price and reason).

The validator (`subnet.validator.app`, the real `/rec` API) is asked live requests by the gateway's own client
(`subnet.services.request_recommendations`: shuffled pools with weaker candidates), and mixes in ground-truth
probes (`subnet.validator.probes.ProbeMixer`): one live request in three rounds, two probes. The probes come from
a bank built once, every held-out case `OFFLINE_DRAWS` times as the gateway builds probes (`subnet.probes.build_case`:
fresh pools and shuffles), through the endpoint's wire format, rotated as the gateway rotates them. The slow
miner's 2.5 s are added to the latency the validator measures for its answers (`DelayedPool`) instead of being
slept; the validator sees exactly what it would see from a miner that slept. A default run takes about half a
minute; `--quick` (90 rounds, one draw per case) about 20 s.

Reported per miner: the weight the validator sets on the local chain with the new reward, the weight today's
formula gives on the same answers (`subnet.validator.scoring.LegacyScoreBoard` fed the same rewards), the NDCG of
the probes it was sent, and its true offline NDCG@5 on the whole bank (computed directly, no network; for random,
the exact expectation of a uniform pick, `chance_ndcg`), with its standard error; then the checks of the issue:
good >= slow-good > lazy > random > invalid, copycat <= good, Spearman(weight, true NDCG) >= 0.9.

On lazy > random: with the context shuffled, and the validator's "valid" meaning "in the context", the context in
order is itself a uniform pick of the valid SKUs: lazy and random have the same expected NDCG (chance over the
pool), and which of the two a run weighs higher is noise. That is what "position tells a miner nothing" means; a
reward that ordered them robustly would have to pay for something other than quality.
"""

import argparse
import atexit
import json
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ("good", "slow-good", "lazy", "random", "copycat", "invalid")
SLOW_SECONDS = 2.5
NUM_RESULTS = 5
NETUID = 15
OFFLINE_DRAWS = 2
ROUNDS = 240
QUICK_ROUNDS = 90


def _check_port(port: int) -> int:
    """The port, if nothing listens on it on loopback (the sim's ports are given, never random: --port-base)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(f"port {port} is taken; pass another --port-base") from exc
    return port


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation with average ranks for ties."""

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (sx * sy) if sx and sy else 0.0


@dataclass
class World:
    """What the miners may know: the store's order history (co-purchases) and what the storefront showed."""

    cooc: dict[str, Counter[str]]
    served: dict[tuple[str, str], list[str]]
    rng: random.Random


def _entries(context: str) -> list[Any]:
    from subnet.miner.strategies import context_entries

    return context_entries(context)


def _item(entry: Any) -> dict[str, str]:
    return {"sku": entry.sku, "name": entry.name, "price": entry.price, "reason": "sim"}


def strategy(name: str, world: World) -> Callable[[str, str, int, str], list[dict[str, str]]]:
    """The answer function of a strategy: (site_key, query, num_results, context) -> items."""
    from subnet.miner.strategies import recommend_similar

    def lazy(site_key: str, query: str, n: int, context: str) -> list[dict[str, str]]:
        return [_item(e) for e in _entries(context) if e.sku != query][:n]

    def good(site_key: str, query: str, n: int, context: str) -> list[dict[str, str]]:
        entries = [e for e in _entries(context) if e.sku != query]
        by_text = recommend_similar(entries=_entries(context), query=query, limit=len(entries))
        text_rank = {item["sku"]: rank for rank, item in enumerate(by_text)}
        bought_with = world.cooc.get(query, Counter())
        ranked = sorted(entries, key=lambda e: (-bought_with[e.sku], text_rank.get(e.sku, len(entries)), e.sku))
        return [_item(e) for e in ranked[:n]]

    def random_pick(site_key: str, query: str, n: int, context: str) -> list[dict[str, str]]:
        entries = [e for e in _entries(context) if e.sku != query]
        return [_item(e) for e in world.rng.sample(entries, min(n, len(entries)))]

    def copycat(site_key: str, query: str, n: int, context: str) -> list[dict[str, str]]:
        entries = [e for e in _entries(context) if e.sku != query]
        by_sku = {e.sku: e for e in entries}
        seen = [sku for sku in world.served.get((site_key, query), []) if sku in by_sku]
        picks = [by_sku[sku] for sku in seen] + [e for e in entries if e.sku not in seen]
        return [_item(e) for e in picks[:n]]

    def invalid(site_key: str, query: str, n: int, context: str) -> list[dict[str, str]]:
        return [{"sku": e.sku} for e in _entries(context)[:n]]

    return {
        "good": good,
        "slow-good": good,
        "lazy": lazy,
        "random": random_pick,
        "copycat": copycat,
        "invalid": invalid,
    }[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=None, help=f"validator rounds (default {ROUNDS}, quick {QUICK_ROUNDS})"
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a short CI-like run: fewer rounds, one draw per case")
    parser.add_argument("--port-base", type=int, default=9250, help="validator on it, the six miners on the next six")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds if args.rounds is not None else (QUICK_ROUNDS if args.quick else ROUNDS)
    result = simulate(
        rounds=rounds,
        seed=args.seed,
        draws=1 if args.quick else OFFLINE_DRAWS,
        port_base=args.port_base,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print_table(result)


def simulate(*, rounds: int, seed: int, draws: int, port_base: int, progress: bool = False) -> dict[str, Any]:
    """Run the simulation of the module docstring once; returns the table and the checks as data."""
    started = time.monotonic()
    ports = [_check_port(port_base + offset) for offset in range(len(STRATEGIES) + 1)]

    local_dir = tempfile.mkdtemp(prefix="bitrecs-incentive-sim-")
    atexit.register(shutil.rmtree, local_dir, ignore_errors=True)  # the database and wallets of this run
    os.environ.update(
        {
            "BITRECS_LOCAL_DIR": local_dir,
            "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings",
            "LOG_LEVEL": "ERROR",
            "BITRECS_NETWORK": "local",
            "BITRECS_NETUID": str(NETUID),
        }
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    import bittensor.utils.networking
    from bittensor_wallet import Keypair, Wallet

    from catalog_sync.models import OrderLine, Product
    from catalog_sync.services import import_catalog_file
    from merchants.services.stores import create_store
    from subnet import chain
    from subnet.client import ValidatorClient, ValidatorError
    from subnet.exceptions import AnswerRejected, CandidatePoolTooSmall
    from subnet.miner.neuron import LOOPBACK, MinerNeuron
    from subnet.miner.strategies import Recommendation
    from subnet.models import ChainNeuron
    from subnet.probes import PROBE_SEQUENCES_PATH, build_case, load_probe_sequences, sequence_cases
    from subnet.protocol import BitrecsRequest, sign_request_bodies
    from subnet.services import request_recommendations
    from subnet.signing import generate_private_key_hex, load_private_key
    from subnet.validator.app import ValidatorConfig, ValidatorServer, create_app
    from subnet.validator.catalog import catalog_for_network
    from subnet.validator.dendrite_pool import DendriteMinerPool
    from subnet.validator.keeper import LocalChainWeights, ScoreKeeper
    from subnet.validator.miners import MinerAnswer
    from subnet.validator.probes import Probe, ProbeMixer, parse_probes
    from subnet.validator.public_key import StaticPublicKey
    from subnet.validator.scoring import LegacyScoreBoard, Reward, chance_ndcg, ndcg_at_k

    bittensor.utils.networking.get_external_ip = lambda: LOOPBACK
    sign_request_bodies(True)
    rng = random.Random(seed)

    # ------------------------------------------------------------------ the store, its history, the held-out cases
    sequences = load_probe_sequences()
    shuffled = list(sequences)
    rng.shuffle(shuffled)
    training, held_out = shuffled[: len(shuffled) // 2], shuffled[len(shuffled) // 2 :]
    store = create_store(platform="custom", domain="incentive-sim.invalid")
    import_catalog_file(store=store, path=PROBE_SEQUENCES_PATH, fmt="amazon")
    products = {p.external_id: p for p in Product.objects.filter(store=store)}
    # The store's history: every purchase except the held-out shoppers' last ones (EVALUATION.md's protocol).
    history = [*training, *(items[:-1] for items in held_out)]
    lines = []
    for user, items in enumerate(history):
        for line, item in enumerate(items):
            if item in products:
                lines.append(
                    OrderLine(
                        store=store,
                        order_id=f"u{user}",
                        line_id=str(line),
                        product=products[item],
                        product_external_id=item,
                        sku=item,
                        price=products[item].price,
                    )
                )
    OrderLine.objects.bulk_create(lines)
    # The good miner's own knowledge, which no pool carries: co-purchases over the whole file, held-out purchases
    # included (the "probe history"); it stands for a miner with a better model than our engine.
    cooc: dict[str, Counter[str]] = defaultdict(Counter)
    for items in sequences:
        for a in items:
            for b in items:
                if a != b:
                    cooc[a][b] += 1
    world = World(cooc=dict(cooc), served={}, rng=random.Random(seed + 1))
    cases = sequence_cases(sequences=held_out)

    # ------------------------------------------------------------------ the local chain: validator and six miners
    validator_key = Keypair.create_from_uri("//IncentiveSimValidator")
    chain.register_neuron(netuid=NETUID, hotkey=validator_key.ss58_address, role=ChainNeuron.Role.VALIDATOR)
    miners: list[MinerNeuron] = []
    uid_of: dict[str, int] = {}

    class StrategyMiner(MinerNeuron):
        def __init__(self, *, answer: Callable[[str, str, int, str], list[dict[str, str]]], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._answer = answer

        def answer(self, *, synapse: BitrecsRequest, timeout: float | None = None) -> Recommendation:
            request = (synapse.site_key or "", synapse.query or "", synapse.num_results, synapse.context or "")
            items = self._answer(*request)
            return Recommendation(items=items, models_used=["sim"])

    for index, name in enumerate(STRATEGIES):
        wallet = Wallet(name=f"sim-{name}", hotkey="default", path=str(Path(local_dir) / "wallets"))
        wallet.create_coldkey_from_uri(f"//SimCold{index}", use_password=False, suppress=True)
        wallet.create_hotkey_from_uri(f"//SimHot{index}", use_password=False, suppress=True)
        neuron = chain.register_neuron(
            netuid=NETUID, hotkey=wallet.hotkey.ss58_address, coldkey=wallet.coldkeypub.ss58_address, role="miner"
        )
        miner = StrategyMiner(
            answer=strategy(name, world),
            wallet=wallet,
            provider=None,
            allowed_hotkeys=lambda: {validator_key.ss58_address},
            uid=neuron.uid,
            port=ports[index + 1],
        ).start()
        chain.serve_axon(netuid=NETUID, hotkey=miner.hotkey, ip=LOOPBACK, port=miner.port)
        miners.append(miner)
        uid_of[name] = neuron.uid

    class DelayedPool:
        """The dendrite pool, with the slow miner's extra seconds added to the latency the validator measures."""

        def __init__(self, inner: DendriteMinerPool, delays: dict[int, float]) -> None:
            self.inner, self.delays = inner, delays

        def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
            answers = self.inner.query(request)
            return [replace(a, latency_seconds=a.latency_seconds + self.delays.get(a.uid, 0.0)) for a in answers]

    legacy = LegacyScoreBoard()
    probe_ndcg: dict[int, list[float]] = defaultdict(list)

    class SimKeeper(ScoreKeeper):
        """The validator's keeper, also feeding today's formula the same rewards."""

        def record(self, rewards: Sequence[Reward], *, probe: bool = False) -> None:
            legacy.update(rewards)
            if probe:
                for reward in rewards:
                    probe_ndcg[reward.uid].append(reward.ndcg or 0.0)
            super().record(rewards, probe=probe)

    keeper = SimKeeper(
        sink=LocalChainWeights(netuid=NETUID, validator_hotkey=validator_key.ss58_address), weights_interval=1e12
    )
    pool = DelayedPool(
        DendriteMinerPool(wallet=validator_key, netuid=NETUID, timeout=5.0), {uid_of["slow-good"]: SLOW_SECONDS}
    )
    signing_hex = generate_private_key_hex()
    private_key = load_private_key(hex_key=signing_hex)
    app = create_app(
        config=ValidatorConfig(api_key="sim", network="testnet", rate_limit_per_minute=10**9),
        miner_pool=pool,
        public_key=StaticPublicKey(private_key.public_key()),
        keeper=keeper,
    )
    server = ValidatorServer(app, port=ports[0])
    server.start()
    client = ValidatorClient(
        server.url, "sim", network="testnet", signing_key=signing_hex, requests_per_minute=10**9, max_attempts=1
    )

    # The held-out cases, each built `draws` times as the gateway builds probes (fresh pools and shuffles), once:
    # the validator's probes rotate through them, and every strategy's true NDCG is measured on all of them.
    case_rng = random.Random(seed + 2)
    from recommendations.engine.loader import build_recommender_for_store

    engine = build_recommender_for_store(store=store)
    built = [build_case(store=store, case=c, rng=case_rng, recommender=engine) for c in cases for _ in range(draws)]
    # Through the wire format the endpoint serves (its signatures are tested apart).
    bank = parse_probes({"cases": [c.as_wire() for c in built if c is not None]})
    rotation: list[Probe] = []

    def probe_batch() -> list[Probe]:
        """The next 20 cases of the bank, reshuffled whenever it has been used up (the gateway's rotation)."""
        if len(rotation) < 20:
            fresh = list(bank)
            case_rng.shuffle(fresh)
            rotation.extend(fresh)
        batch = rotation[:20]
        del rotation[:20]
        return batch

    mixer = ProbeMixer(source=probe_batch, pool=pool, keeper=keeper, network="testnet", rng=random.Random(seed))
    probe_queries = [products[c.query] for c in cases if c.query in products and len(c.query) >= 3]
    others = [p for p in products.values() if len(p.external_id) >= 3 and p.price]
    live_rng = random.Random(seed + 3)
    live = probes = 0
    try:
        for round_index in range(rounds):
            if round_index % 3 == 0:
                product = live_rng.choice(probe_queries if live_rng.random() < 0.5 else others)
                try:
                    checked = request_recommendations(
                        client=client,
                        store=store,
                        product=product,
                        num_results=NUM_RESULTS,
                        rng=live_rng,
                        recommender=engine,
                    )
                except (ValidatorError, AnswerRejected, CandidatePoolTooSmall, ValueError):
                    continue
                world.served[(store.site_key, checked.query_sku)] = [item.sku for item in checked.results]
                live += 1
            elif mixer.run_once() is not None:
                probes += 1
            if progress and round_index % 50 == 49:
                print(f"round {round_index + 1}/{rounds}", file=sys.stderr)
        keeper.sync()
    finally:
        server.stop()
        for miner in miners:
            miner.stop()

    # ------------------------------------------------------------------ true offline quality of each strategy
    offline_world = World(cooc=world.cooc, served=dict(world.served), rng=random.Random(seed + 5))
    true_ndcg: dict[str, float] = {}
    true_se: dict[str, float] = {}
    for name in STRATEGIES:
        answer = strategy(name, offline_world)
        scores = []
        for case in bank:
            _, context = catalog_for_network(network="testnet", context=case.context)
            if name == "random":
                # its exact expectation over its own draws (chance), not one sample of it
                candidates = [e.sku for e in _entries(context) if e.sku != case.query]
                scores.append(chance_ndcg(candidates=candidates, relevant=case.bought, k=case.num_results))
                continue
            picked = answer(case.site_key, case.query, case.num_results, context)
            valid = len(picked) == case.num_results and all({"name", "price", "reason"} <= p.keys() for p in picked)
            ranked = [item["sku"] for item in picked] if valid else []
            scores.append(ndcg_at_k(ranked=ranked, relevant=case.bought, k=case.num_results))
        true_ndcg[name] = mean = sum(scores) / len(scores)
        spread = math.fsum((x - mean) ** 2 for x in scores) / max(1, len(scores) - 1)
        true_se[name] = 0.0 if name == "random" else math.sqrt(spread / len(scores))  # random's is exact

    weights_new = chain.get_weights(netuid=NETUID, validator_hotkey=validator_key.ss58_address)
    weights_old = legacy.weights()
    rows: list[dict[str, Any]] = []
    for name in STRATEGIES:
        uid = uid_of[name]
        seen = probe_ndcg.get(uid, [])
        rows.append(
            {
                "miner": name,
                "uid": uid,
                "weight_today": round(weights_old.get(uid, 0.0), 4),
                "weight_new": round(weights_new.get(uid, 0.0), 4),
                "probe_ndcg_seen": round(sum(seen) / len(seen), 4) if seen else 0.0,
                "true_ndcg@5": round(true_ndcg[name], 4),
                "true_ndcg_se": round(true_se[name], 4),
            }
        )
    w = {row["miner"]: row["weight_new"] for row in rows}
    wo = {row["miner"]: row["weight_today"] for row in rows}
    truth = [true_ndcg[name] for name in STRATEGIES]

    def checks(weights: dict[str, float]) -> dict[str, Any]:
        return {
            "good>=slow-good": weights["good"] >= weights["slow-good"],
            "slow-good>lazy": weights["slow-good"] > weights["lazy"],
            "lazy>random": weights["lazy"] > weights["random"],
            "random>invalid": weights["random"] > weights["invalid"],
            "copycat<=good": weights["copycat"] <= weights["good"],
            "spearman": round(spearman([weights[name] for name in STRATEGIES], truth), 3),
        }

    return {
        "rounds": rounds,
        "live_requests": live,
        "probes": probes,
        "held_out_cases": len(cases),
        "probe_bank": len(bank),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "miners": rows,
        "checks_new": checks(w),
        "checks_today": checks(wo),
    }


def print_table(result: dict[str, Any]) -> None:
    """The result as the markdown table of the note."""
    print(
        f"\n{result['live_requests']} live requests, {result['probes']} probes, {result['held_out_cases']} held-out "
        f"cases ({result['probe_bank']} probes built), seed {result['seed']}, {result['seconds']} s\n"
    )
    header = ("miner", "weight today", "weight new", "NDCG@5 probes sent", "true NDCG@5 (SE)")
    print(f"| {header[0]:<10} | {header[1]:>12} | {header[2]:>10} | {header[3]:>18} | {header[4]:>16} |")
    print(f"|{'-' * 12}|{'-' * 14}|{'-' * 12}|{'-' * 20}|{'-' * 18}|")
    for row in result["miners"]:
        truth = f"{row['true_ndcg@5']:.4f} ({row['true_ndcg_se']:.4f})"
        print(
            f"| {row['miner']:<10} | {row['weight_today']:>12.4f} | {row['weight_new']:>10.4f} | "
            f"{row['probe_ndcg_seen']:>18.4f} | {truth:>16} |"
        )
    print(f"\nnew formula:   {result['checks_new']}\ntoday's formula: {result['checks_today']}")


if __name__ == "__main__":
    main()
