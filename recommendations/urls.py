from django.urls import path

from recommendations.views.events import events_view
from recommendations.views.widget import WIDGET_PATH, RecommendationsView

urlpatterns = [
    path(WIDGET_PATH, RecommendationsView.as_view(), name="recommendations"),
    path("api/v1/events", events_view, name="events"),
]
