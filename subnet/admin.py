from django.contrib import admin
from django.http import HttpRequest

from subnet.models import ChainNeuron, MinerScore, NetworkRequest


@admin.register(NetworkRequest)
class NetworkRequestAdmin(admin.ModelAdmin):
    """Read-only log of the gateway's requests to validators."""

    list_display = ("created_at", "store", "query_id", "status", "error_code", "miner_hotkey", "latency_ms")
    list_filter = ("status", "error_code")
    search_fields = ("query_id", "miner_hotkey", "store__domain", "store__site_key")
    list_select_related = ("store",)
    raw_id_fields = ("store", "product")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: NetworkRequest | None = None) -> bool:
        return False


@admin.register(ChainNeuron)
class ChainNeuronAdmin(admin.ModelAdmin):
    """The local chain's registrations (written by the neurons themselves; read-only here)."""

    list_display = ("netuid", "uid", "role", "hotkey", "axon_ip", "axon_port", "stake", "last_seen_at")
    list_filter = ("netuid", "role")
    search_fields = ("hotkey", "coldkey")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ChainNeuron | None = None) -> bool:
        return False


@admin.register(MinerScore)
class MinerScoreAdmin(admin.ModelAdmin):
    """Validators' moving-average scores of miners, as last saved with their weights."""

    list_display = ("netuid", "validator_hotkey", "miner_uid", "miner_hotkey", "score", "answers", "valid_answers")
    list_filter = ("netuid", "validator_hotkey")
    search_fields = ("miner_hotkey", "validator_hotkey")
    ordering = ("netuid", "validator_hotkey", "-score")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MinerScore | None = None) -> bool:
        return False
