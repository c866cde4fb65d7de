"""Records of the gateway's requests to the network: every attempt, answered, rejected or failed."""

from typing import Any

from django.db import models
from django.utils import timezone

from catalog_sync.models import EXTERNAL_ID_MAX_LENGTH, Product
from merchants.models import Store


class NetworkRequest(models.Model):
    """One attempt to get a product's list from a validator; a rejected answer is kept here and never served.

    `answered`: the checked list was stored as the product's network list. `rejected`: the validator
    answered with a list that failed our checks (`error_code` says why). `failed`: no usable answer
    (`error_code` is the client error's class name, or the domain error's code).
    """

    class Status(models.TextChoices):
        ANSWERED = "answered", "Answered"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="network_requests")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The query product's external id, kept when the product is deleted.
    query_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    validator = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Whether another attempt may succeed, and how long a rate-limiting validator asked us to wait.
    retryable = models.BooleanField(default=False)
    retry_after_seconds = models.FloatField(null=True, blank=True)
    miner_hotkey = models.CharField(max_length=64, blank=True)
    miner_uid = models.CharField(max_length=64, blank=True)
    models_used: Any = models.JSONField(default=list, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["store", "product", "created_at"], name="netrequest_product_created_idx"),
            models.Index(fields=["status", "created_at"], name="netrequest_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.status} request for {self.query_id or '?'} to {self.validator}"


class ChainNeuron(models.Model):
    """A neuron registered on the local chain (BITRECS_NETWORK=local): its uid, keys, role, axon and stake.

    Every neuron process reads this table (bittensor's MockSubtensor keeps its state in one process
    only); `subnet.chain` is the only writer.
    """

    class Role(models.TextChoices):
        MINER = "miner", "Miner"
        VALIDATOR = "validator", "Validator"

    netuid = models.PositiveIntegerField()
    uid = models.PositiveIntegerField()
    hotkey = models.CharField(max_length=64)
    coldkey = models.CharField(max_length=64, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices)
    axon_ip = models.CharField(max_length=64, blank=True)
    axon_port = models.PositiveIntegerField(null=True, blank=True)
    stake = models.FloatField(default=0.0)
    registered_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["netuid", "hotkey"], name="chainneuron_netuid_hotkey_uniq"),
            models.UniqueConstraint(fields=["netuid", "uid"], name="chainneuron_netuid_uid_uniq"),
        ]
        ordering = ["netuid", "uid"]

    def __str__(self) -> str:
        return f"{self.role} uid {self.uid} on netuid {self.netuid} ({self.hotkey})"


class ChainWeight(models.Model):
    """One weight a validator set on a miner uid on the local chain; a new set replaces the validator's old one."""

    netuid = models.PositiveIntegerField()
    validator_hotkey = models.CharField(max_length=64)
    miner_uid = models.PositiveIntegerField()
    weight = models.FloatField()
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["netuid", "validator_hotkey", "miner_uid"], name="chainweight_validator_miner_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.validator_hotkey} -> uid {self.miner_uid}: {self.weight:.4f}"


class MinerScore(models.Model):
    """A validator's moving-average score for one miner uid, saved whenever it sets weights (its standing)."""

    netuid = models.PositiveIntegerField()
    validator_hotkey = models.CharField(max_length=64)
    miner_uid = models.PositiveIntegerField()
    miner_hotkey = models.CharField(max_length=64)
    score = models.FloatField(default=0.0)
    answers = models.PositiveIntegerField(default=0)
    valid_answers = models.PositiveIntegerField(default=0)
    last_reward = models.FloatField(default=0.0)
    # The moving averages the score is made of (subnet.validator.scoring), and the counts behind them.
    validity = models.FloatField(default=0.0)
    speed = models.FloatField(default=0.0)
    quality = models.FloatField(default=0.0)
    probes = models.PositiveIntegerField(default=0)
    served = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["netuid", "validator_hotkey", "miner_uid"], name="minerscore_validator_miner_uniq"
            ),
        ]
        ordering = ["netuid", "validator_hotkey", "miner_uid"]

    def __str__(self) -> str:
        return f"{self.validator_hotkey} scores uid {self.miner_uid} at {self.score:.4f}"


class HotkeyChallenge(models.Model):
    """A sign-in message issued to a hotkey: single use, valid until `expires_at` (the portal's hotkey sign-in).

    The browser session that asked for it keeps its nonce (`subnet.signin`): only that session may redeem it.
    """

    hotkey = models.CharField(max_length=64)
    nonce = models.CharField(max_length=64, unique=True)
    message = models.TextField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["hotkey", "issued_at"], name="hotkeychallenge_hotkey_idx")]

    def __str__(self) -> str:
        return f"challenge {self.nonce[:8]} for {self.hotkey}"


class ScoreRound(models.Model):
    """One miner's standing when a validator set weights: the history behind score, weight and rank over time.

    `problems` counts the validator's reasons for rejecting the miner's answers since the previous round, and
    `agreement`, `latency_p50_ms` and `latency_p99_ms` summarise its valid answers of the same period.
    """

    netuid = models.PositiveIntegerField()
    validator_hotkey = models.CharField(max_length=64)
    miner_uid = models.PositiveIntegerField()
    miner_hotkey = models.CharField(max_length=64)
    score = models.FloatField(default=0.0)
    weight = models.FloatField(default=0.0)
    rank = models.PositiveIntegerField()
    answers = models.PositiveIntegerField(default=0)
    valid_answers = models.PositiveIntegerField(default=0)
    validity = models.FloatField(default=0.0)
    quality = models.FloatField(default=0.0)
    round_answers = models.PositiveIntegerField(default=0)
    round_valid = models.PositiveIntegerField(default=0)
    problems: Any = models.JSONField(default=dict, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    latency_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_p99_ms = models.PositiveIntegerField(null=True, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["netuid", "miner_hotkey", "recorded_at"], name="scoreround_miner_idx"),
            models.Index(fields=["netuid", "validator_hotkey", "recorded_at"], name="scoreround_validator_idx"),
        ]
        ordering = ["recorded_at", "miner_uid"]

    def __str__(self) -> str:
        return f"{self.validator_hotkey} round: uid {self.miner_uid} rank {self.rank} score {self.score:.4f}"
