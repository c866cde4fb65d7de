from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from bitrecs_site.health import healthz
from bitrecs_site.widget_asset import widget_js

# Every error answers JSON outside the pages for people (bitrecs_site.exception_handler).
handler400 = "bitrecs_site.exception_handler.bad_request"
handler403 = "bitrecs_site.exception_handler.permission_denied"
handler404 = "bitrecs_site.exception_handler.page_not_found"
handler500 = "bitrecs_site.exception_handler.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("widget.js", widget_js, name="widget-js"),
    # The demo storefront answers 404 outside local mode (bitrecs_site.demo.views.local_only).
    path("demo/", include("bitrecs_site.demo.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script): no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("subnet/", include("subnet.urls")),
    path("", include("portal.urls")),
    path("", include("merchants.urls")),
    path("", include("recommendations.urls")),
]
