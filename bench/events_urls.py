"""The bench URLs plus the reference of bench.events_bench: a bare Django view taking a POST (204, no body)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.bench_urls import urlpatterns as bench_urlpatterns


@csrf_exempt
def bare_post(request: HttpRequest) -> HttpResponse:
    """The reference: no database, no parsing, an empty 204 like the events endpoint's."""
    return HttpResponse(status=204)


urlpatterns = [path("bench/bare-post", bare_post), *bench_urlpatterns]
