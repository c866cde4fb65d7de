"""One value per query parameter: a query that repeats a parameter (`?limit=1&limit=500`) is refused, not guessed at.

Django's `request.GET.get` silently takes the last value, so a repeated parameter is read differently by us, by a
proxy or cache in front of us, and by a signature check that sees all of them. Every path answers such a query
with 400 JSON naming the parameter, except:
- the Django admin, whose list filters may repeat a parameter;
- array parameters written with a `[]` suffix (`ids[]=1&ids[]=2`), which Shopify sends and signs as arrays.
"""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase, QueryDict

from bitrecs_site.exception_handler import error_response

EXEMPT_PATHS = re.compile(r"^/admin(/|$)")
# (The widget API's WSGI fast path, recommendations.fast_path, leaves a repeated parameter to Django, hence here.)


def repeated_parameters(*, params: QueryDict) -> list[str]:
    """The names of the parameters (a query or a form) given more than once (array `name[]` ones excepted), sorted."""
    return sorted(name for name, values in params.lists() if len(values) > 1 and not name.endswith("[]"))


class SingleQueryParametersMiddleware:
    """Answers 400 {"error": "repeated_parameter", ...} to a query that repeats a parameter, before any view runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not EXEMPT_PATHS.match(request.path_info or "/"):
            repeated = repeated_parameters(params=request.GET)
            if repeated:
                names = ", ".join(repr(name) for name in repeated)
                detail = f"The query gives {names} more than once; give each parameter once."
                return error_response(status=400, code="repeated_parameter", detail=detail)
        return self.get_response(request)
