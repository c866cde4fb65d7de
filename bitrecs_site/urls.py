from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from bitrecs_site.health import healthz
from bitrecs_site.widget_asset import widget_js

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("widget.js", widget_js, name="widget-js"),
    # The demo storefront answers 404 outside local mode (bitrecs_site.demo.views.local_only).
    path("demo/", include("bitrecs_site.demo.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("subnet/", include("subnet.urls")),
    path("", include("merchants.urls")),
    path("", include("recommendations.urls")),
]
