"""`DendriteMinerPool`: the validator's fan-out to a chain's miners, through bittensor's dendrite.

Each `query` reads the miners' axons from a chain: by default the local chain (`subnet.chain`, by
netuid), or any `miners` callable (bittensor's subtensor: `SubtensorChain.miners`). It sends the request
to all of them at once with a `Dendrite` signed by the validator's hotkey, and keeps the answers of the
miners that answered with HTTP 200 (BITRECS_PROTOCOL.md §3, per request step 3, without the retry).
"""

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from subnet import chain
from subnet.protocol import BitrecsRequest, bt, request_for_miners
from subnet.validator.miners import MinerAnswer

logger = logging.getLogger(__name__)

# MAX_DENDRITE_TIMEOUT of the public validator.
DEFAULT_TIMEOUT: Final = 5.0
LOOPBACK: Final = "127.0.0.1"
# bittensor 10.5.0 `Dendrite()` looks up its external IP on the internet; it is replaced while one is built.
_EXTERNAL_IP_LOCK = threading.Lock()


def _new_dendrite(*, wallet: Any, external_ip: str) -> Any:
    """A `bt.Dendrite` for `wallet` (a Wallet or a Keypair) that does not look its IP up (§12)."""
    networking = bt.utils.networking
    with _EXTERNAL_IP_LOCK:
        original = networking.get_external_ip
        networking.get_external_ip = lambda: external_ip
        try:
            return bt.Dendrite(wallet=wallet)
        finally:
            networking.get_external_ip = original


class MinerAxon(Protocol):
    """A miner to query: its uid, keys and axon (a local-chain `ChainNeuron`, or a subtensor metagraph entry)."""

    @property
    def uid(self) -> int: ...

    @property
    def hotkey(self) -> str: ...

    @property
    def coldkey(self) -> str: ...

    @property
    def axon_ip(self) -> str: ...

    @property
    def axon_port(self) -> int | None: ...


def _hotkey_of(wallet: Any) -> str:
    keypair = getattr(wallet, "hotkey", wallet)
    return str(keypair.ss58_address)


class DendriteMinerPool:
    """A `MinerPool` over a chain's miners, queried through bittensor's dendrite.

    `miners` returns the miners to ask, read anew for every request; without it they are the miners
    serving an axon on the local chain's `netuid`. The validator's own hotkey is always left out.
    """

    def __init__(
        self,
        *,
        wallet: Any,
        netuid: int,
        miners: Callable[[], Sequence[MinerAxon]] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        external_ip: str = LOOPBACK,
    ) -> None:
        self.wallet = wallet
        self.netuid = netuid
        self.timeout = timeout
        self.external_ip = external_ip
        self.hotkey = _hotkey_of(wallet)
        self._miners = miners

    def miners(self) -> list[MinerAxon]:
        """The miners to ask (by default those serving an axon on the local chain), the validator left out."""
        found: Sequence[MinerAxon] = (
            self._miners() if self._miners is not None else chain.list_miners(netuid=self.netuid)
        )
        return [miner for miner in found if miner.hotkey != self.hotkey]

    def query(self, request: BitrecsRequest) -> list[MinerAnswer]:
        miners = self.miners()
        if not miners:
            logger.info("subnet.dendrite_pool_no_miners", extra={"netuid": self.netuid})
            return []
        synapse = request_for_miners(request=request)
        responses = asyncio.run(self._forward(miners=miners, synapse=synapse))
        answers = []
        for miner, response in zip(miners, responses, strict=True):
            answer = _answer(miner=miner, response=response, request=request)
            if answer.error:
                logger.info("subnet.dendrite_pool_miner_failed", extra={"miner_uid": miner.uid, "error": answer.error})
            answers.append(answer)
        return answers

    async def _forward(self, *, miners: Sequence[MinerAxon], synapse: BitrecsRequest) -> list[Any]:
        axons = [
            bt.AxonInfo(
                version=0,
                ip=miner.axon_ip,
                port=int(miner.axon_port or 0),
                ip_type=4,
                hotkey=miner.hotkey,
                coldkey=miner.coldkey,
            )
            for miner in miners
        ]
        dendrite = _new_dendrite(wallet=self.wallet, external_ip=self.external_ip)
        try:
            return list(
                await dendrite.forward(
                    axons=axons, synapse=synapse, timeout=self.timeout, deserialize=False, run_async=True
                )
            )
        finally:
            await dendrite.aclose_session()


def _answer(*, miner: MinerAxon, response: Any, request: BitrecsRequest) -> MinerAnswer:
    """The miner's answer; `error` is set if the call failed or timed out (the validator's `is_success` gate)."""
    failed = MinerAnswer(
        uid=miner.uid, hotkey=miner.hotkey, query=request.query or "", created_at="", results=(), models_used=()
    )
    if not isinstance(response, BitrecsRequest) or response.dendrite is None:
        return replace(failed, error="no_response")
    if not response.is_success:
        return replace(failed, error=f"http_{response.dendrite.status_code or 'error'}")
    if not isinstance(response.results, list):
        return replace(failed, error="no_results")
    try:
        latency = float(response.dendrite.process_time or 0.0)
    except (TypeError, ValueError):
        latency = 0.0
    if latency <= 0:  # the public reward requires the dendrite's process-time header
        return replace(failed, error="no_process_time")
    return MinerAnswer(
        uid=miner.uid,
        hotkey=miner.hotkey,
        query=response.query or request.query or "",
        created_at=response.created_at or "",
        results=tuple(item if isinstance(item, str) else json.dumps(item) for item in response.results),
        models_used=tuple(str(model) for model in response.models_used or ()),
        latency_seconds=latency,
    )
