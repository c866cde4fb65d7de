"""The project's URLs plus the reference view of bench.widget_bench: a bare Django JsonResponse."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bitrecs_site.urls import urlpatterns as project_urlpatterns

# The same shape and size as a four-item recommendations answer.
BARE_BODY = {
    "rec_id": "l_0123456789abcdef0123",
    "source": "local",
    "placement": "product",
    "items": [
        {
            "sku": f"SKU-{n}",
            "name": f"Bench product number {n}",
            "price": "19.99",
            "url": f"https://bench.local/products/{n}",
            "image": f"https://cdn.bench.local/{n}.jpg",
        }
        for n in range(4)
    ],
}


def bare_json(request: HttpRequest) -> JsonResponse:
    """The reference: no database, no DRF, a static JSON body."""
    return JsonResponse(BARE_BODY)


urlpatterns = [path("bench/bare", bare_json), *project_urlpatterns]
