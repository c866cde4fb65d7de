"""`GET /widget.js`: the storefront widget script, gzipped when the browser accepts it, cacheable, any origin."""

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from django.views.decorators.http import require_safe

WIDGET_SOURCE = Path(settings.BASE_DIR) / "recommendations" / "static" / "bitrecs" / "widget.js"
# Stores pick up a new widget within minutes; a stale copy may be used for a day while it revalidates.
WIDGET_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


@dataclass(frozen=True)
class WidgetAsset:
    content: bytes
    gzipped: bytes
    etag: str


@functools.lru_cache(maxsize=2)
def _asset(mtime_ns: int) -> WidgetAsset:
    content = WIDGET_SOURCE.read_bytes()
    digest = hashlib.blake2b(content, digest_size=12).hexdigest()
    return WidgetAsset(content=content, gzipped=gzip.compress(content, compresslevel=9, mtime=0), etag=f'"{digest}"')


def widget_asset() -> WidgetAsset:
    """The widget as served: read again only when the file changes (an edit shows without a restart)."""
    return _asset(WIDGET_SOURCE.stat().st_mtime_ns)


@require_safe
def widget_js(request: HttpRequest) -> HttpResponse:
    """Serve widget.js; 304 on a matching If-None-Match."""
    asset = widget_asset()
    tags = parse_etags(request.headers.get("If-None-Match", ""))
    if "*" in tags or any(tag.removeprefix("W/") in (asset.etag, asset.etag[:-1] + '-gz"') for tag in tags):
        response: HttpResponse = HttpResponseNotModified()
        response["ETag"] = asset.etag
    elif "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response = HttpResponse(asset.gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
        response["ETag"] = asset.etag[:-1] + '-gz"'  # a different representation, a different strong tag
    else:
        response = HttpResponse(asset.content, content_type="text/javascript; charset=utf-8")
        response["ETag"] = asset.etag
    response["Cache-Control"] = WIDGET_CACHE_CONTROL
    response["Access-Control-Allow-Origin"] = "*"  # public code; lets pages load it with crossorigin
    patch_vary_headers(response, ("Accept-Encoding",))
    return response
