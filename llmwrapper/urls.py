from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from llmwrapper import errors
from llmwrapper.dashboard.views import usage_dashboard
from llmwrapper.health import health
from llmwrapper.observability.views import metrics
from surfaces.openai_models import openai_not_found

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("llmwrapper.api_urls")),
    path("v1/", include("llmwrapper.v1_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/usage/", admin.site.admin_view(usage_dashboard), name="usage-dashboard"),
    path("admin/", admin.site.urls),
    re_path(r"^v1/", openai_not_found),
    re_path(r"^api/", errors.api_not_found),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
