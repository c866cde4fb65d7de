from django.urls import path

from recommendations.views.events import events_view
from recommendations.views.widget import RecommendationsView, serve_cached_answers

urlpatterns = [
    path("api/v1/recommendations", serve_cached_answers(RecommendationsView.as_view()), name="recommendations"),
    path("api/v1/events", events_view, name="events"),
]
