"""The portal's views, one module per area; each module owns its `urlpatterns` (collected in portal.urls)."""
