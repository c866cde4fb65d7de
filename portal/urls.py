from portal.views import analytics, auth, experiments, hotkey, merchant, neurons

# Each views module owns its routes under /portal/.
urlpatterns = [
    *auth.urlpatterns,
    *merchant.urlpatterns,
    *analytics.urlpatterns,
    *experiments.urlpatterns,
    *hotkey.urlpatterns,
    *neurons.urlpatterns,
]
