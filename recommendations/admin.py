from django.contrib import admin

from recommendations.models import (
    AttributedLine,
    DailyRollup,
    Experiment,
    NetworkAnswer,
    PlacementSettings,
    RecommendationList,
    ShopperEvent,
)


@admin.register(RecommendationList)
class RecommendationListAdmin(admin.ModelAdmin):
    list_display = ("store", "query_id", "placement", "source", "rec_id", "computed_at", "miner_hotkey")
    list_filter = ("placement", "source")
    search_fields = ("query_id", "rec_id", "store__site_key", "miner_hotkey")
    raw_id_fields = ("store", "product")
    list_select_related = ("store",)


@admin.register(NetworkAnswer)
class NetworkAnswerAdmin(admin.ModelAdmin):
    list_display = ("store", "query_id", "placement", "rec_id", "miner_hotkey", "latency_ms", "created_at")
    search_fields = ("query_id", "rec_id", "miner_hotkey")
    raw_id_fields = ("store", "product")
    list_select_related = ("store",)


@admin.register(ShopperEvent)
class ShopperEventAdmin(admin.ModelAdmin):
    list_display = ("store", "type", "sku", "placement", "source", "arm", "miner_hotkey", "received_at")
    list_filter = ("type", "placement", "source", "arm")
    search_fields = ("event_id", "sku", "rec_id", "session_id")
    raw_id_fields = ("store",)
    list_select_related = ("store",)
    show_full_result_count = False  # a large table: no COUNT(*) per page


@admin.register(AttributedLine)
class AttributedLineAdmin(admin.ModelAdmin):
    list_display = ("store", "order_id", "line_id", "kind", "source", "miner_hotkey", "arm", "gross", "refunded")
    list_filter = ("kind", "source", "arm")
    search_fields = ("order_id", "rec_id", "sku", "miner_hotkey")
    raw_id_fields = ("store",)
    list_select_related = ("store",)


@admin.register(DailyRollup)
class DailyRollupAdmin(admin.ModelAdmin):
    list_display = ("store", "day", "placement", "source", "arm", "impressions", "clicks", "orders", "revenue")
    list_filter = ("placement", "source", "arm")
    raw_id_fields = ("store",)
    list_select_related = ("store",)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("store", "name", "status", "weights", "default_arm", "started_at", "stopped_at")
    list_filter = ("status",)
    raw_id_fields = ("store",)


@admin.register(PlacementSettings)
class PlacementSettingsAdmin(admin.ModelAdmin):
    list_display = ("store", "placement", "title", "count", "layout", "anonymous_events")
    raw_id_fields = ("store",)
