"""The project's URLs plus a stand-in `POST /api/v1/events` that records what the widget sends, and any page sent
in parts (`/in-parts/<path>`).

The stand-in comes after the real routes, so once the events endpoint exists it answers and the stand-in is
never reached (the browser tests then read the stored events instead; see conftest.sent_events).
"""

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bitrecs_site.urls import urlpatterns as project_urlpatterns

_lock = threading.Lock()
received: list[dict[str, Any]] = []


@csrf_exempt
@require_POST
def record_events(request: HttpRequest) -> HttpResponse:
    batch = json.loads(request.body)
    with _lock:
        received.append({"content_type": request.content_type, **batch})
    return HttpResponse(status=204)


def in_parts(request: HttpRequest, page: str) -> StreamingHttpResponse:
    """The page at /<page> as its view renders it, sent in parts 0.5 s apart, cut inside the consent banner's text
    and inside its Accept button: a slow network's delivery, during which the browser paints what it has parsed."""
    match = resolve("/" + page)
    response = match.func(request, *match.args, **match.kwargs)
    html = response.content
    cuts = [0, html.index(b"We use cookies") + len(b"We use cookies"), html.index(b">Accept<") + 1, len(html)]

    def parts() -> Iterator[bytes]:
        for start, end in itertools.pairwise(cuts):
            if start:
                time.sleep(0.5)
            yield html[start:end]

    return StreamingHttpResponse(parts(), status=response.status_code, content_type=response["Content-Type"])


urlpatterns = [
    *project_urlpatterns,
    path("api/v1/events", record_events),
    path("in-parts/<path:page>", in_parts),
]
