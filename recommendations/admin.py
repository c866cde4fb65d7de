from django.contrib import admin

from recommendations.models import NetworkAnswer, RecommendationList


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
