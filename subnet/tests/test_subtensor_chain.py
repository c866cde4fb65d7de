"""The neurons on bittensor's subtensor (`subnet.subtensor_chain`, `--subtensor`), against bittensor's MockSubtensor.

There is no chain here (and no internet), so the chain process is bittensor 10.5.0's own
`bittensor.utils.mock.MockSubtensor`, in-process. `ChainMock` below fixes what is broken in it; each fix
stands in for the chain node (its storage reads, or the runtime applying an extrinsic), never for our
code. Our code calls the real public `Subtensor` methods - `metagraph`, `is_hotkey_registered`,
`serve_axon`, `min_allowed_weights`, `max_weight_limit`, `set_weights` - and those run bittensor's own
code (`Metagraph.sync`, `serve_axon_extrinsic`, `set_weights_extrinsic` with its u16 conversion and rate
limit check) down to the storage queries and the signed extrinsic, which the mock answers.
"""

import socket
from collections.abc import Iterator
from io import StringIO
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.core.management import CommandError, call_command

from subnet.models import MinerScore
from subnet.tests.conftest import API_KEY, RFC_PRIVATE_KEY_HEX, miner_synapse

pytest.importorskip("subnet.protocol", exc_type=ImportError)

import bittensor.utils.networking  # after subnet.protocol, which imports bittensor with Django's loggers kept
from bittensor.core.chain_data import NeuronInfo, NeuronInfoLite
from bittensor.core.types import ExtrinsicResponse
from bittensor.utils.mock import MockSubtensor
from bittensor.utils.mock.subtensor_mock import AxonInfoDict
from bittensor_wallet import Keypair, Wallet

from subnet import subtensor_chain
from subnet.client import RecAnswer, ValidatorClient
from subnet.management.commands import run_miner
from subnet.miner.neuron import LOOPBACK, MinerNeuron
from subnet.protocol import BitrecsRequest, bt
from subnet.registry import validators_from_metagraph
from subnet.subtensor_chain import (
    VERSION_KEY,
    ChainCallFailed,
    ChainUnreachable,
    NotRegistered,
    SubtensorChain,
    chain_weights,
)
from subnet.validator.app import ValidatorServer
from subnet.validator.dendrite_pool import DendriteMinerPool
from subnet.validator.keeper import ScoreKeeper
from subnet.validator.scoring import Reward, ScoreBoard

NETUID = 5
U16 = 65535


class ChainMock(MockSubtensor):
    """bittensor 10.5.0's MockSubtensor with the chain-side reads and writes our calls reach made to work.

    In 10.5.0 the mock's state helpers work (`create_subnet`, `force_register_neuron`, `do_block_step`) but
    `Subtensor`'s methods now go through `self.substrate` (a MagicMock in the mock), so every hotkey looks
    registered, hyperparameters are MagicMocks, `metagraph()` fails, and extrinsics are never applied. Fixes:

    * storage reads: `get_uid_for_hotkey_on_subnet` (the `Uids` map; the base answers a MagicMock, i.e.
      "registered", for anyone), `get_neuron_for_pubkey_and_subnet` (same map), `get_hyperparameter`
      (from the mock's state; commit-reveal off, no weights rate limit, `MaxWeightsLimit` is the mock's
      `MaxWeightLimit`);
    * metagraph: `neuron_for_uid_lite` (the mock copies NeuronInfo fields removed in 10.5.0, such as
      `rank`), `query_runtime_api` (`get_subnet_state`, for the stakes; nothing else), `get_metagraph_info`
      (no such runtime API in the mock: None, which `Metagraph.sync` accepts);
    * extrinsics: `compose_call` records the call (no runtime metadata to validate it against) and
      `sign_and_send_extrinsic` applies `serve_axon` and `set_mechanism_weights` to the mock's storage the
      way the chain does (signer registered; `MinAllowedWeights` checked), recording every extrinsic.
    """

    @property
    def storage(self) -> dict[str, Any]:
        """The mock's SubtensorModule storage (its TypedDict lists only a few of the keys it holds)."""
        return cast(dict[str, Any], self.chain_state["SubtensorModule"])

    def get_uid_for_hotkey_on_subnet(self, hotkey_ss58: str, netuid: int, block: int | None = None) -> int | None:
        uids = self.storage["Uids"].get(netuid, {}).get(hotkey_ss58)
        return None if not uids else self._get_most_recent_storage(uids, block)

    def get_neuron_for_pubkey_and_subnet(self, hotkey_ss58: str, netuid: int, block: int | None = None) -> Any:
        uid = self.get_uid_for_hotkey_on_subnet(hotkey_ss58, netuid, block)
        return NeuronInfo.get_null_neuron() if uid is None else self.neuron_for_uid(uid, netuid, block)

    def get_hyperparameter(self, param_name: str, netuid: int, block: int | None = None) -> Any:
        state = self.storage
        if param_name == "CommitRevealWeightsEnabled":
            return False
        if param_name == "WeightsSetRateLimit":
            return 0
        if param_name == "LastUpdate":
            size = self._get_most_recent_storage(state["SubnetworkN"][netuid])
            return [self._get_most_recent_storage(state["LastUpdate"][netuid][uid]) for uid in range(size)]
        name = {"MaxWeightsLimit": "MaxWeightLimit"}.get(param_name, param_name)
        return self._get_most_recent_storage(state[name][netuid], block)

    def neuron_for_uid_lite(self, uid: int, netuid: int, block: int | None = None) -> Any:
        info = self._neuron_subnet_exists(uid, netuid, block)
        if info is None:
            return None
        return NeuronInfoLite(**{name: getattr(info, name) for name in NeuronInfoLite.__dataclass_fields__})

    def query_runtime_api(self, runtime_api: str, method: str, params: Any = None, block: int | None = None) -> Any:
        if (runtime_api, method) != ("SubnetInfoRuntimeApi", "get_subnet_state"):
            return None
        neurons = self.neurons_lite(params[0], block)
        unused = ["active", "validator_permit", "pruning_score", "last_update", "emission", "dividends", "incentives"]
        unused += ["consensus", "trust", "rank", "block_at_registration"]
        return {
            "netuid": params[0],
            **{key: [] for key in unused},
            "alpha_stake": [neuron.stake.rao for neuron in neurons],
            "tao_stake": [0 for _ in neurons],
            "total_stake": [neuron.stake.rao for neuron in neurons],
            "emission_history": [],
        }

    def get_metagraph_info(self, *args: Any, **kwargs: Any) -> None:
        return None

    def compose_call(self, call_module: str, call_function: str, call_params: dict, block: int | None = None) -> Any:
        return SimpleNamespace(call_module=call_module, call_function=call_function, call_params=dict(call_params))

    def sign_and_send_extrinsic(
        self, call: Any, wallet: Any, sign_with: str = "coldkey", *args: Any, **kwargs: Any
    ) -> ExtrinsicResponse:
        self.__dict__.setdefault("extrinsics", []).append(SimpleNamespace(call=call, options=kwargs))
        params, state = call.call_params, self.storage
        hotkey = getattr(wallet, sign_with).ss58_address
        uid = self.get_uid_for_hotkey_on_subnet(hotkey, params["netuid"])
        if uid is None:
            return ExtrinsicResponse(False, "HotKeyNotRegisteredInSubNet")
        if call.call_function == "serve_axon":
            state["Axons"][params["netuid"]].setdefault(hotkey, {})[self.block_number] = AxonInfoDict(
                block=self.block_number,
                version=params["version"],
                ip=params["ip"],
                port=params["port"],
                ip_type=params["ip_type"],
                protocol=params["protocol"],
                placeholder1=0,
                placeholder2=0,
            )
            return ExtrinsicResponse(True, "")
        if call.call_function == "set_mechanism_weights":
            if len(params["dests"]) < self.get_hyperparameter("MinAllowedWeights", params["netuid"]):
                return ExtrinsicResponse(False, "WeightVecLengthIsLow")
            weights = list(zip(params["dests"], params["weights"], strict=True))
            state["Weights"][params["netuid"]][uid][self.block_number] = weights
            state["LastUpdate"][params["netuid"]][uid][self.block_number] = self.block_number
            return ExtrinsicResponse(True, "")
        return ExtrinsicResponse(False, f"{call.call_function} is not modelled")

    # test helpers (state only, like the mock's own force_* helpers)

    def force_validator_permit(self, netuid: int, uid: int) -> None:
        self.storage["ValidatorPermit"][netuid][uid][self.block_number] = True

    def force_hyperparameter(self, name: str, netuid: int, value: int) -> None:
        self.storage[name][netuid][self.block_number] = value

    def weights_of(self, netuid: int, uid: int) -> list[tuple[int, int]]:
        return list(self._get_most_recent_storage(self.storage["Weights"][netuid][uid]))

    def calls(self, function: str) -> list[Any]:
        return [sent for sent in self.__dict__.get("extrinsics", []) if sent.call.call_function == function]


@pytest.fixture
def mock_chain(monkeypatch) -> Iterator[ChainMock]:
    """A fresh mock chain with subnet NETUID (MinAllowedWeights 1), which `open_subtensor` returns."""
    ChainMock.reset()
    mock = ChainMock()
    mock.create_subnet(NETUID)
    mock.force_hyperparameter("MinAllowedWeights", NETUID, 1)
    monkeypatch.setattr(subtensor_chain, "open_subtensor", lambda network: mock)
    # Offline, Dendrite() would look its external IP up on the internet.
    monkeypatch.setattr(bittensor.utils.networking, "get_external_ip", lambda: LOOPBACK)
    yield mock
    ChainMock.reset()


def make_wallet(tmp_path, name: str, *, seed: str | None = None) -> Wallet:
    wallet = Wallet(name=name, hotkey="default", path=str(tmp_path / "wallets"))
    wallet.create_coldkey_from_uri(f"//{seed or name}Cold", use_password=False, suppress=True, overwrite=True)
    wallet.create_hotkey_from_uri(f"//{seed or name}Hot", use_password=False, suppress=True, overwrite=True)
    return wallet


def register(mock: ChainMock, wallet_or_key: Any, *, stake: float = 0.0, permit: bool = False) -> int:
    hotkey = getattr(wallet_or_key, "hotkey", wallet_or_key).ss58_address
    coldkey = wallet_or_key.coldkeypub.ss58_address if hasattr(wallet_or_key, "coldkeypub") else "5Cold"
    uid = mock.force_register_neuron(NETUID, hotkey, coldkey, stake=stake)
    if permit:
        mock.force_validator_permit(NETUID, uid)
    return uid


def axon_for(wallet: Wallet, *, ip: str = "203.0.113.7", port: int = 8091) -> Any:
    return bt.Axon(wallet=wallet, port=port, ip=LOOPBACK, external_ip=ip, external_port=port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------- registration


def test_registered_and_unregistered_hotkeys(mock_chain, tmp_path):
    miner = make_wallet(tmp_path, "miner")
    stranger = Keypair.create_from_uri("//Stranger")
    uid = register(mock_chain, miner)
    chain = SubtensorChain(network="test", netuid=NETUID)

    assert chain.is_registered(miner.hotkey.ss58_address)
    assert not chain.is_registered(stranger.ss58_address)
    assert chain.require_registered(miner.hotkey.ss58_address) == uid
    with pytest.raises(NotRegistered, match=r"btcli subnets register --netuid 5 --network test") as refused:
        chain.require_registered(stranger.ss58_address, wallet_name="mywallet", hotkey_name="hk")
    assert "--wallet.name mywallet --wallet.hotkey hk" in str(refused.value)
    assert mock_chain.get_uid_for_hotkey_on_subnet(stranger.ss58_address, NETUID) is None  # never registered


def test_an_unreachable_chain_names_its_endpoint():
    endpoint = f"ws://127.0.0.1:{free_port()}"  # nothing listens: refused at once, no internet needed

    with pytest.raises(ChainUnreachable, match=rf"cannot reach the '{endpoint}' subtensor at {endpoint}"):
        SubtensorChain(network=endpoint, netuid=NETUID)


# ----------------------------------------------------------------------------------------------- metagraph


def test_the_metagraph_is_cached_and_resynced_after_the_period(mock_chain, tmp_path, caplog):
    register(mock_chain, make_wallet(tmp_path, "first"))
    now = [0.0]
    chain = SubtensorChain(network="test", netuid=NETUID, resync_seconds=60, clock=lambda: now[0])
    first = chain.metagraph()

    register(mock_chain, make_wallet(tmp_path, "second"))
    now[0] = 59.0
    cached = chain.metagraph()
    now[0] = 60.0
    resynced = chain.metagraph()

    assert (len(first.hotkeys), cached is first, len(resynced.hotkeys)) == (1, True, 2)

    # a failed resync keeps the metagraph it had
    def down(**kwargs):
        raise ConnectionError("socket closed")

    mock_chain.metagraph = down
    now[0] = 200.0
    assert chain.metagraph() is resynced
    assert "subnet.subtensor_resync_failed" in caplog.text


def test_miners_are_the_serving_axons_but_the_validator_and_heavy_stakes(mock_chain, tmp_path):
    validator, serving, silent, heavy = (make_wallet(tmp_path, name) for name in ("val", "serving", "silent", "heavy"))
    validator_uid = register(mock_chain, validator, stake=10_000.0, permit=True)
    serving_uid = register(mock_chain, serving, stake=1.0)
    register(mock_chain, silent)
    register(mock_chain, heavy, stake=5000.0)
    chain = SubtensorChain(network="test", netuid=NETUID)
    for wallet, port in ((validator, 7779), (serving, 8091), (heavy, 8093)):
        chain.serve_axon(axon_for(wallet, port=port))

    [miner] = chain.miners(exclude_hotkey=validator.hotkey.ss58_address)

    assert (miner.uid, miner.hotkey, miner.coldkey) == (
        serving_uid,
        serving.hotkey.ss58_address,
        serving.coldkeypub.ss58_address,
    )
    assert (miner.axon_ip, miner.axon_port, miner.stake) == ("203.0.113.7", 8091, pytest.approx(1.0))
    # the validator's own axon serves too, and without a stake limit only it is left out
    unlimited = SubtensorChain(network="test", netuid=NETUID, max_stake=None)
    assert [m.uid for m in unlimited.miners(exclude_hotkey=validator.hotkey.ss58_address)] == [serving_uid, 3]
    assert validator_uid not in [m.uid for m in unlimited.miners(exclude_hotkey=validator.hotkey.ss58_address)]
    [served] = mock_chain.calls("serve_axon")[:1]
    assert served.options["wait_for_inclusion"] is True


def test_a_sample_of_the_miners_is_drawn_again_after_a_resync(mock_chain, tmp_path):
    wallets = [make_wallet(tmp_path, f"m{index}") for index in range(5)]
    for wallet in wallets:
        register(mock_chain, wallet)
    now = [0.0]
    chain = SubtensorChain(network="test", netuid=NETUID, sample_size=2, resync_seconds=10, clock=lambda: now[0])
    for index, wallet in enumerate(wallets):
        chain.serve_axon(axon_for(wallet, port=9000 + index))

    first = chain.miners()
    again = chain.miners()
    samples = set()
    for step in range(1, 30):
        now[0] = step * 10.0
        samples.add(tuple(miner.uid for miner in chain.miners()))

    assert len(first) == 2 and first == again
    assert len(samples) > 1 and all(len(sample) == 2 for sample in samples)


def test_the_miner_allow_list_is_the_permitted_validators(mock_chain, tmp_path):
    permitted, plain = make_wallet(tmp_path, "permitted"), make_wallet(tmp_path, "plain")
    register(mock_chain, permitted, permit=True)
    register(mock_chain, plain)
    now = [0.0]
    chain = SubtensorChain(network="test", netuid=NETUID, resync_seconds=60, clock=lambda: now[0])
    allowed = chain.validator_allow_list()

    assert allowed() == frozenset({permitted.hotkey.ss58_address})
    assert chain.has_validator_permit(permitted.hotkey.ss58_address)
    assert not chain.has_validator_permit(plain.hotkey.ss58_address)

    # a permit given on chain is seen after the next resync, which the allow-list itself never does
    mock_chain.force_validator_permit(NETUID, 1)
    now[0] = 61.0
    assert allowed() == frozenset({permitted.hotkey.ss58_address})
    chain.metagraph()
    assert allowed() == frozenset({permitted.hotkey.ss58_address, plain.hotkey.ss58_address})


# ------------------------------------------------------------------------------------------------- weights


def rewards(*pairs: tuple[int, str, float]) -> list[Reward]:
    """Probe answers of these NDCGs at full latency (speed 0): with alphas 1 a miner's score is its NDCG."""
    return [Reward(uid=uid, hotkey=hotkey, ndcg=ndcg, total=ndcg) for uid, hotkey, ndcg in pairs]


@pytest.fixture
def scored_subnet(mock_chain, tmp_path):
    """uid 0 the validator (permit), uids 1-3 miners; uid 3 is never scored."""
    validator = make_wallet(tmp_path, "validator")
    register(mock_chain, validator, stake=10_000.0, permit=True)
    miners = [make_wallet(tmp_path, f"miner{index}") for index in range(1, 4)]
    for wallet in miners:
        register(mock_chain, wallet)
    mock_chain.do_block_step()  # bittensor sets weights only once blocks_since_last_update > weights_rate_limit
    return validator, [wallet.hotkey.ss58_address for wallet in miners]


@pytest.mark.django_db
def test_the_validators_weights_reach_the_chain_through_set_weights(mock_chain, scored_subnet):
    validator, (hotkey1, hotkey2, _) = scored_subnet
    chain = SubtensorChain(network="test", netuid=NETUID)
    sink = chain.weight_sink(wallet=validator)
    now = [0.0]
    board = ScoreBoard(alpha=1.0, quality_alpha=1.0)
    keeper = ScoreKeeper(board=board, sink=sink, weights_interval=60, clock=lambda: now[0])

    keeper.record(rewards((1, hotkey1, 0.6), (2, hotkey2, 0.2)), probe=True)  # not due yet
    assert mock_chain.calls("set_mechanism_weights") == []
    now[0] = 60.0
    keeper.record(rewards((1, hotkey1, 0.6), (2, hotkey2, 0.2)), probe=True)

    # scores 0.6 and 0.2 -> normalised 0.75 / 0.25 -> max scaled to u16: 65535 and 21845
    assert keeper.syncs == 1
    [sent] = mock_chain.calls("set_mechanism_weights")
    assert sent.call.call_params == {
        "netuid": NETUID,
        "mecid": 0,
        "dests": [1, 2],
        "weights": [U16, 21845],
        "version_key": VERSION_KEY,
    }
    assert VERSION_KEY == 83
    assert (sent.options["wait_for_inclusion"], sent.options["wait_for_finalization"]) == (False, False)
    assert mock_chain.weights_of(NETUID, 0) == [(1, U16), (2, 21845)]
    # read back by bittensor itself, through a full metagraph
    full = mock_chain.metagraph(NETUID, lite=False)
    assert list(full.W[0]) == pytest.approx([0.0, 0.75, 0.25, 0.0], abs=1e-4)
    assert sink.last_set == ([1, 2], [U16, 21845])
    saved = {row.miner_uid: row for row in MinerScore.objects.filter(validator_hotkey=sink.validator_hotkey)}
    assert (saved[1].score, saved[2].score, saved[1].answers) == (pytest.approx(0.6), pytest.approx(0.2), 2)


@pytest.mark.django_db
def test_fewer_weights_than_min_allowed_weights_give_every_uid_the_floor(mock_chain, scored_subnet):
    validator, (hotkey1, _, _) = scored_subnet
    mock_chain.force_hyperparameter("MinAllowedWeights", NETUID, 3)
    sink = SubtensorChain(network="test", netuid=NETUID).weight_sink(wallet=validator)

    sink.save(standings=ScoreBoard(alpha=1.0, quality_alpha=1.0).standings, weights={})  # nothing scored: nothing set
    board = ScoreBoard(alpha=1.0, quality_alpha=1.0)
    board.update(rewards((1, hotkey1, 0.8)), probe=True)
    sink.save(standings=board.snapshot(), weights=board.weights())

    # §4 step 2: 1e-5 for every uid plus its weight, then max scaled: the floor rounds to 1
    assert mock_chain.weights_of(NETUID, 0) == [(0, 1), (1, U16), (2, 1), (3, 1)]


@pytest.mark.django_db
def test_weights_set_too_soon_fail_and_the_keeper_goes_on(mock_chain, tmp_path, caplog):
    validator, miner = make_wallet(tmp_path, "validator"), make_wallet(tmp_path, "miner")
    register(mock_chain, validator, permit=True)
    register(mock_chain, miner)  # no block step: blocks_since_last_update (0) is not above the rate limit (0)
    chain = SubtensorChain(network="test", netuid=NETUID)
    keeper = ScoreKeeper(
        sink=chain.weight_sink(wallet=validator), weights_interval=1, clock=iter([0.0, 5.0, 5.0]).__next__
    )

    keeper.record(rewards((1, miner.hotkey.ss58_address, 0.7)), probe=True)

    assert (keeper.steps, keeper.syncs) == (1, 0)
    assert "subnet.validator_set_weights_failed" in caplog.text
    assert "too soon after the last update" in caplog.text
    assert MinerScore.objects.filter(miner_uid=1).exists()  # the standings were saved all the same
    with pytest.raises(ChainCallFailed):
        chain.set_weights(wallet=validator, uids=[1], weights=[U16])


@pytest.mark.django_db
def test_hotkey_churn_drops_the_old_hotkeys_score(mock_chain, scored_subnet):
    validator, (hotkey1, _, _) = scored_subnet
    sink = SubtensorChain(network="test", netuid=NETUID).weight_sink(wallet=validator)
    board = ScoreBoard(alpha=1.0, quality_alpha=1.0)
    board.update(rewards((1, hotkey1, 0.6), (2, "5SomeoneWhoLeft", 0.2)), probe=True)

    sink.save(standings=board.snapshot(), weights=board.weights())
    resumed = sink.load()

    assert mock_chain.weights_of(NETUID, 0) == [(1, U16)]  # uid 2 is now held by hotkey2, not the scored one
    assert list(resumed) == [1] and resumed[1].hotkey == hotkey1


@pytest.mark.parametrize(
    ("weights", "limit", "expected"),
    [
        # a cap the weights can meet: 0.8 / 0.1 / 0.1 with at most 0.5 each -> 0.5 / 0.25 / 0.25
        ({0: 0.8, 1: 0.1, 2: 0.1}, 0.5, ([0, 1, 2], [U16, 32768, 32768])),
        # two weights cannot each stay under 0.015 (the mock's 1000/65535): the cap is dropped, not flattened
        ({0: 0.75, 1: 0.25}, 1000 / U16, ([0, 1], [U16, 21845])),
        ({0: 0.75, 1: 0.25}, None, ([0, 1], [U16, 21845])),
        ({0: 0.0}, 1.0, ([], [])),
        ({7: 1.0}, 1.0, ([], [])),  # a uid no longer in the metagraph
    ],
)
def test_chain_weights_respect_max_weight_limit_when_it_can(weights, limit, expected):
    assert chain_weights(weights, n=3, min_allowed_weights=1, max_weight_limit=limit) == expected


# ------------------------------------------------------------------------------------------------ commands


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["run_validator", "run_miner"])
def test_the_commands_refuse_an_unregistered_hotkey_and_name_btcli(mock_chain, tmp_path, command):
    make_wallet(tmp_path, "unregistered")
    args = ["--provider", "offline"] if command == "run_miner" else ["--api-key", "k"]

    with pytest.raises(CommandError, match=r"not registered on netuid 5 of 'test'.*btcli subnets register") as refused:
        call_command(
            command,
            *args,
            "--subtensor",
            "--subtensor-network",
            "test",
            "--netuid",
            str(NETUID),
            "--wallet-path",
            str(tmp_path / "wallets"),
            "--wallet-name",
            "unregistered",
            "--external-ip" if command == "run_miner" else "--timeout",
            LOOPBACK if command == "run_miner" else "3",
        )

    assert "--wallet.name unregistered --wallet.hotkey default" in str(refused.value)
    assert mock_chain.calls("serve_axon") == []
    assert mock_chain._get_most_recent_storage(mock_chain.storage["SubnetworkN"][NETUID]) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["run_validator", "run_miner"])
def test_the_commands_say_which_endpoint_failed(command):
    endpoint = f"ws://127.0.0.1:{free_port()}"
    args = ["--provider", "offline"] if command == "run_miner" else ["--api-key", "k"]

    with pytest.raises(
        CommandError, match=rf"No chain reachable: cannot reach the '{endpoint}' subtensor at {endpoint}"
    ):
        call_command(command, *args, "--subtensor", "--subtensor-network", endpoint)


@pytest.mark.django_db
def test_the_local_network_name_is_not_a_subtensor():
    with pytest.raises(CommandError, match="use --local-chain"):
        call_command("run_validator", "--api-key", "k", "--subtensor", "--subtensor-network", "local")


def call(key: Any, axons: list, request: BitrecsRequest) -> list[int | None]:
    replies = []
    for response in bt.Dendrite(wallet=key).query(axons=axons, synapse=request, timeout=3):
        assert isinstance(response, BitrecsRequest) and response.dendrite is not None
        replies.append(response.dendrite.status_code)
    return replies


@pytest.mark.django_db(transaction=True)
def test_run_miner_serves_its_axon_and_answers_only_permitted_validators(monkeypatch, mock_chain, tmp_path, luma_body):
    miner = make_wallet(tmp_path, "miner")
    miner_uid = register(mock_chain, miner)
    register(mock_chain, validator_key := Keypair.create_from_uri("//PermittedValidator"), permit=True)
    plain = Keypair.create_from_uri("//RegisteredNoPermit")
    register(mock_chain, plain)
    port = free_port()
    seen: dict[str, Any] = {}

    def while_serving(tick):
        tick()  # the main loop's resync (cached: nothing to do yet)
        metagraph = mock_chain.metagraph(NETUID)
        axon = metagraph.axons[miner_uid]
        seen["axon"] = (axon.ip, axon.port, axon.is_serving)
        seen["replies"] = call(validator_key, [axon], miner_synapse(luma_body)) + call(
            plain, [axon], miner_synapse(luma_body)
        )

    monkeypatch.setattr(run_miner, "run_until_interrupted", while_serving)
    out = StringIO()

    call_command(
        "run_miner",
        "--provider",
        "offline",
        "--subtensor",
        "--subtensor-network",
        "test",
        "--netuid",
        str(NETUID),
        "--wallet-path",
        str(tmp_path / "wallets"),
        "--wallet-name",
        "miner",
        "--host",
        LOOPBACK,
        "--external-ip",
        LOOPBACK,
        "--port",
        str(port),
        stdout=out,
    )

    assert seen["axon"] == (LOOPBACK, port, True)
    assert seen["replies"] == [200, 403]
    assert f"(uid {miner_uid})" in out.getvalue()
    assert "permitted validators of netuid 5 on test" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_run_validator_on_subtensor_queries_the_chains_miners_and_sets_weights(
    monkeypatch, settings, mock_chain, tmp_path, luma_body
):
    # given: a registered, permitted validator wallet and three offline miners serving on the mock chain
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    validator = make_wallet(tmp_path, "validator")
    validator_uid = register(mock_chain, validator, stake=10_000.0, permit=True)
    chain = SubtensorChain(network="test", netuid=NETUID)
    neurons: list[MinerNeuron] = []
    try:
        for index in range(3):
            wallet = make_wallet(tmp_path, f"miner{index}")
            uid = register(mock_chain, wallet)
            neuron = MinerNeuron(
                wallet=wallet,
                provider=None,
                allowed_hotkeys=chain.validator_allow_list(),
                uid=uid,
                port=free_port(),
                local=False,
                host=LOOPBACK,
                external_ip=LOOPBACK,
            ).start()
            neurons.append(neuron)
            chain.serve_axon(neuron.axon)
        mock_chain.do_block_step()
        answers: list[Any] = []

        def serve_briefly(server):
            server.start()
            try:
                client = ValidatorClient(server.url, API_KEY, network="test")
                for _ in range(2):
                    answers.append(
                        client.recommend(
                            query=luma_body["query"],
                            context=luma_body["context"],
                            site_key="s1",
                            num_results=3,
                            created_at="2025-06-28T20:00:00",
                        )
                    )
            finally:
                server.stop()

        monkeypatch.setattr(ValidatorServer, "serve_forever", serve_briefly)
        from subnet.signing import load_private_key
        from subnet.validator import public_key as public_key_module

        key = load_private_key(hex_key=RFC_PRIVATE_KEY_HEX).public_key()
        monkeypatch.setattr(public_key_module.GatewayPublicKey, "get", lambda self: key)
        out = StringIO()

        # when
        call_command(
            "run_validator",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--subtensor",
            "--subtensor-network",
            "test",
            "--netuid",
            str(NETUID),
            "--wallet-path",
            str(tmp_path / "wallets"),
            "--timeout",
            "3",
            "--weights-interval",
            "0.001",
            "--advertise-ip",
            LOOPBACK,
            stdout=out,
        )
    finally:
        for neuron in neurons:
            neuron.stop()

    # then: the gateway got a miner's list; the three miners' standings were saved; without ground truth (no probe
    # reached them here) nobody has a quality score, so the weights set are the bootstrap ones: validity alone,
    # the three valid miners alike (weights themselves: tests above)
    assert f"miners of netuid {NETUID} on test" in out.getvalue()
    assert all(isinstance(answer, RecAnswer) for answer in answers)
    assert {answer.miner_hotkey for answer in answers} <= {neuron.hotkey for neuron in neurons}
    scores = MinerScore.objects.filter(netuid=NETUID, validator_hotkey=validator.hotkey.ss58_address)
    assert sorted(row.miner_uid for row in scores) == sorted(neuron.uid for neuron in neurons)
    assert all(row.validity > 0 and row.score == 0.0 for row in scores)
    assert len({row.validity for row in scores}) == 1
    assert mock_chain.weights_of(NETUID, validator_uid) == [(uid, U16) for uid in sorted(n.uid for n in neurons)]
    # with --advertise-ip the validator served its API address as its axon, where gateways find it
    validator_axon = mock_chain.metagraph(NETUID).axons[validator_uid]
    assert (validator_axon.ip, validator_axon.is_serving) == (LOOPBACK, True)
    assert f":{validator_axon.port}" in out.getvalue()
    [endpoint] = validators_from_metagraph(mock_chain.metagraph(NETUID), api_port=7779)
    assert (endpoint.url, endpoint.hotkey, endpoint.uid) == (
        "http://127.0.0.1:7779",
        validator.hotkey.ss58_address,
        validator_uid,
    )


def test_dendrite_pool_takes_its_miners_from_a_callable(mock_chain, tmp_path):
    validator = Keypair.create_from_uri("//PoolValidator")
    listed = [
        subtensor_chain.MetagraphMiner(uid=4, hotkey="5Other", coldkey="", axon_ip=LOOPBACK, axon_port=1),
        subtensor_chain.MetagraphMiner(uid=0, hotkey=validator.ss58_address, coldkey="", axon_ip=LOOPBACK, axon_port=2),
    ]

    pool = DendriteMinerPool(wallet=validator, netuid=NETUID, miners=lambda: listed)

    assert [miner.uid for miner in pool.miners()] == [4]
