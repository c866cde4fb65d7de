from portal.views import auth, merchant

# Each views module owns its routes under /portal/.
urlpatterns = [*auth.urlpatterns, *merchant.urlpatterns]
