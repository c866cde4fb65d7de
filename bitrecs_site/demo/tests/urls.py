"""The project's URLs plus a stand-in `POST /api/v1/events` that records what the widget sends.

The stand-in comes after the real routes, so once the events endpoint exists it answers and the stand-in is
never reached (the browser tests then read the stored events instead; see conftest.sent_events).
"""

import json
import threading
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
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


urlpatterns = [*project_urlpatterns, path("api/v1/events", record_events)]
