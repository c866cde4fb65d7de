"""Signing in to the portal with an email and password (custom stores, staff, the demo merchant), and out."""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path(
        "portal/login",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="portal-login",
    ),
    path("portal/logout", auth_views.LogoutView.as_view(), name="portal-logout"),
]
