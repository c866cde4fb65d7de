from portal.views import analytics, auth, experiments, hotkey, merchant, neurons, signin, store_settings, why

# Each views module owns its routes under /portal/.
urlpatterns = [
    *auth.urlpatterns,
    *merchant.urlpatterns,
    *analytics.urlpatterns,
    *experiments.urlpatterns,
    *store_settings.urlpatterns,
    *why.urlpatterns,
    *signin.urlpatterns,
    *hotkey.urlpatterns,
    *neurons.urlpatterns,
]
