from django.urls import path

from recommendations.views.widget import RecommendationsView, serve_cached_answers

urlpatterns = [
    path("api/v1/recommendations", serve_cached_answers(RecommendationsView.as_view()), name="recommendations"),
]
