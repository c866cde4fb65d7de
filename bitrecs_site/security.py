"""Content-Security-Policy on the HTML pages (django-csp), keeping a view's own `frame-ancestors`.

The Shopify embedded admin's pages set `frame-ancestors https://<shop> https://admin.shopify.com` themselves
(merchants.services.shopify.shopify_frame_ancestors); here that directive goes into the full policy instead of
being the whole policy. JSON answers and /widget.js (a script other sites load) get no policy: CSP governs
documents, and the widget's CORS headers are left as they are.
"""

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class HtmlContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware for text/html answers only; a bare `frame-ancestors` policy is merged, not kept."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Set the policy on an HTML answer; leave every other answer as it is."""
        if not settings.CONTENT_SECURITY_POLICY or not response.get("Content-Type", "").startswith("text/html"):
            return response
        own = response.get(HEADER, "")
        directive, _, sources = own.partition(" ")
        if directive == "frame-ancestors" and ";" not in sources:
            del response[HEADER]
            response._csp_replace = {"frame-ancestors": sources.split()}  # type: ignore[attr-defined]
        return super().process_response(request, response)
