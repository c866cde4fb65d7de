from django.urls import path

from recommendations.views.widget import WIDGET_PATH, RecommendationsView

urlpatterns = [
    path(WIDGET_PATH, RecommendationsView.as_view(), name="recommendations"),
]
