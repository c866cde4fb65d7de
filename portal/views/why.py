"""Why this list: for any product, the list a shopper gets now, where it came from and what the rules removed."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from merchants.models import Store
from portal.access import store_view
from recommendations.experiments import get_widget_settings
from recommendations.models import Placement
from recommendations.selectors import build_serving_store
from recommendations.selectors.explain import explain_recommendations, sample_skus

MAX_SKU_LENGTH = 255
PLACEMENTS = (Placement.PRODUCT, Placement.CART, Placement.HOME)


@store_view
def why(request: HttpRequest, store: Store) -> HttpResponse:
    """GET ?sku=…&placement=…: the explained answer (as many items as the placement shows); no sku: a picker."""
    sku = request.GET.get("sku", "").strip()
    placement = request.GET.get("placement", Placement.PRODUCT)
    problem = ""
    if placement not in PLACEMENTS:
        problem, placement = f"Unknown placement {placement[:20]!r}: use product, cart or home.", Placement.PRODUCT
    elif len(sku) > MAX_SKU_LENGTH:
        problem, sku = f"A SKU is at most {MAX_SKU_LENGTH} characters.", ""
    elif not sku.isprintable():
        problem, sku = "A SKU has no control characters.", ""
    explained = None
    if not problem and (sku or placement == Placement.HOME):
        limit = get_widget_settings(store_id=store.id, placement=placement).count
        explained = explain_recommendations(
            store=build_serving_store(store=store), placement=placement, sku=sku, limit=limit
        )
    context = {
        "store": store,
        "sku": sku,
        "placement": placement,
        "placements": PLACEMENTS,
        "explained": explained,
        "problem": problem,
        "examples": sample_skus(store_id=store.id, limit=6),
    }
    return render(request, "portal/why.html", context, status=400 if problem else 200)


urlpatterns = [path("portal/stores/<int:store_id>/why", why, name="portal-why")]
