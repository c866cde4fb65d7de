from portal.views import auth, merchant, signin, store_settings, why

# Each views module owns its routes under /portal/.
urlpatterns = [
    *auth.urlpatterns,
    *merchant.urlpatterns,
    *store_settings.urlpatterns,
    *why.urlpatterns,
    *signin.urlpatterns,
]
