from portal.views import auth, hotkey, merchant, neurons

# Each views module owns its routes under /portal/.
urlpatterns = [*auth.urlpatterns, *merchant.urlpatterns, *hotkey.urlpatterns, *neurons.urlpatterns]
