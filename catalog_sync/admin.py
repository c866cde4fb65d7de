from django.contrib import admin

from catalog_sync.models import OrderLine, Product, SyncRun, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("external_id", "sku", "title", "price", "compare_at_price", "in_stock", "inventory")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "store", "price", "in_stock", "status", "updated_at"]
    list_filter = ["status", "in_stock", "is_published", "store"]
    search_fields = ["title", "sku", "external_id", "vendor"]
    list_select_related = ["store"]
    raw_id_fields = ["store"]
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "product", "price", "in_stock"]
    search_fields = ["sku", "external_id", "product__title"]
    raw_id_fields = ["product"]


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ["order_id", "line_id", "store", "sku", "quantity", "price", "rec_id", "created_at"]
    list_filter = ["store"]
    search_fields = ["order_id", "sku", "rec_id"]
    raw_id_fields = ["store", "product", "variant"]


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "store",
        "kind",
        "status",
        "seen",
        "created",
        "updated",
        "failed",
        "started_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    raw_id_fields = ["store"]
    readonly_fields = ["errors", "detail"]
