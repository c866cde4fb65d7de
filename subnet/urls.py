from django.urls import path

from subnet.views import PublicKeyView

app_name = "subnet"

urlpatterns = [
    path("public_key", PublicKeyView.as_view(), name="public-key"),
]
