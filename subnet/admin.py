from django.contrib import admin
from django.http import HttpRequest

from subnet.models import NetworkRequest


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
