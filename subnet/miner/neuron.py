"""The reference miner's bittensor axon: serves `BitrecsRequest` (route `POST /BitrecsRequest`).

Chain and registration are out of scope here: the wallet and the allow-list of caller hotkeys are
given to the constructor (later, the local chain's registrations). No `from __future__ import
annotations` in this module: `Axon.attach()` compares the handlers' real annotations.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, Final, Tuple  # noqa: UP035 - Axon.attach() compares against typing.Tuple[bool, str]

from subnet.miner.providers import ChatProvider
from subnet.miner.strategies import OFFLINE_MODEL, Recommendation, recommend
from subnet.protocol import BitrecsRequest, bt
from subnet.types import encode_result, format_created_at

logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 8091
LOOPBACK: Final = "127.0.0.1"
# Seconds kept back from the dendrite's timeout for encoding and the trip back.
RESPONSE_MARGIN: Final = 0.75


class MinerNeuron:
    """One miner: an axon answering `BitrecsRequest` with `subnet.miner.strategies.recommend`.

    `allowed_hotkeys` is called on every request and returns the hotkeys allowed to query (the
    validators registered on the local chain, later); any other caller gets HTTP 403. In local mode
    the axon listens on 127.0.0.1 only and advertises 127.0.0.1.
    """

    def __init__(
        self,
        *,
        wallet: Any,
        provider: ChatProvider | None,
        allowed_hotkeys: Callable[[], Collection[str]],
        uid: int = 0,
        port: int = DEFAULT_PORT,
        local: bool = True,
        host: str = "0.0.0.0",  # noqa: S104 - only when local=False; local mode binds 127.0.0.1
        external_ip: str | None = None,
    ) -> None:
        if not local and not external_ip:
            raise ValueError("a non-local miner needs the external_ip validators reach it on")
        self.wallet = wallet
        self.provider = provider
        self.allowed_hotkeys = allowed_hotkeys
        self.uid = uid
        self.hotkey: str = wallet.hotkey.ss58_address
        self.host = LOOPBACK if local else host
        # An explicit external_ip: without one the axon looks it up on the internet.
        self.axon = bt.Axon(wallet=wallet, port=port, ip=self.host, external_ip=external_ip or LOOPBACK)
        self.axon.fast_config.host = self.host
        self.axon.attach(forward_fn=self.forward, blacklist_fn=self.blacklist)

    @property
    def model(self) -> str:
        return self.provider.model if self.provider else OFFLINE_MODEL

    @property
    def port(self) -> int:
        return int(self.axon.port)

    def start(self) -> "MinerNeuron":
        """Start serving in a background thread; returns once the socket listens (or after 10 s)."""
        self.axon.start()
        deadline = time.monotonic() + 10
        while not self.axon.fast_server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        logger.info("miner.started", extra={"host": self.host, "port": self.port, "hotkey": self.hotkey})
        return self

    def stop(self) -> None:
        """Stop the axon's server thread."""
        self.axon.stop()

    def blacklist(self, synapse: BitrecsRequest) -> Tuple[bool, str]:  # noqa: UP006 - see the import
        """Refuse a caller without a hotkey or whose hotkey is not in the allow-list."""
        caller = synapse.dendrite.hotkey if synapse.dendrite else None
        if not caller:
            return True, "missing dendrite hotkey"
        if caller not in self.allowed_hotkeys():
            return True, f"hotkey {caller} is not allowed"
        return False, "allowed"

    async def forward(self, synapse: BitrecsRequest) -> BitrecsRequest:
        """Fill `results`, `models_used`, `miner_uid`, `miner_hotkey` and `created_at`; blank `user`/`context`."""
        budget = max(0.5, float(synapse.timeout or 12.0) - RESPONSE_MARGIN)
        answer = await asyncio.to_thread(self.answer, synapse=synapse, timeout=budget)
        synapse.results = [encode_result(item=item) for item in answer.items]
        synapse.models_used = answer.models_used
        synapse.miner_uid = str(self.uid)
        synapse.miner_hotkey = self.hotkey
        synapse.created_at = format_created_at(when=datetime.now(UTC))
        synapse.user = ""
        synapse.context = "[]"
        return synapse

    def answer(self, *, synapse: BitrecsRequest, timeout: float | None = None) -> Recommendation:
        """Return the recommendation for one request; an unexpected error gives the offline answer."""
        kwargs: dict[str, Any] = {
            "query": synapse.query or "",
            "context": synapse.context or "",
            "num_results": synapse.num_results,
            "user": synapse.user,
        }
        try:
            answer = recommend(**kwargs, provider=self.provider, timeout=timeout)
        except Exception:
            logger.exception("miner.answer_failed", extra={"query": synapse.query})
            answer = recommend(**kwargs, provider=None)
        if answer.fallback:
            logger.info(
                "miner.offline_fallback",
                extra={"query": synapse.query, "fallback": answer.fallback, "rejected": answer.rejected},
            )
        return answer
