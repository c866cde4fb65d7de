from portal.views import analytics, auth, experiments, merchant

# Each views module owns its routes under /portal/.
urlpatterns = [*auth.urlpatterns, *merchant.urlpatterns, *analytics.urlpatterns, *experiments.urlpatterns]
