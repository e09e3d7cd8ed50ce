"""OpenAI-compatible model endpoints: `GET /v1/models` and `GET /v1/models/{id}`, and
the OpenAI-shaped 404 for any other path under /v1."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from llmwrapper.api import principal
from providers import gateway
from providers.core.errors import ProviderError
from surfaces.openai_chat import OpenAIError, _OpenAIView


def _model(model_id: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


async def _provider_models(view: gateway.View, name: str) -> list[str]:
    """The models a provider offers: a connection's own list, else what its vendor
    lists, else its default model."""
    if view.models.get(name):
        return list(view.models[name])
    registry = view.registry
    try:
        return await registry.get(name).list_models()
    except ProviderError:
        return [registry.config(name).default_model]


async def _view(request: Request) -> gateway.View:
    caller = principal(request)
    return await gateway.view_for(caller.subtenant)


class ModelsView(_OpenAIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="OpenAI's model list: `provider/model` ids.")},
        summary="OpenAI-compatible model list",
        operation_id="v1_models_list",
        tags=["openai-compatible"],
    )
    async def get(self, request: Request) -> Response:
        view = await _view(request)
        registry = view.registry
        created = int(time.time())
        data = []
        for name in registry.names():
            if registry.is_configured(name):
                models = await _provider_models(view, name)
                data += [_model(f"{name}/{m}", name, created) for m in models]
        data += [_model(route, "route", created) for route in view.routes]
        data += [_model(alias, "alias", created) for alias in settings.MODEL_ALIASES]
        return Response({"object": "list", "data": data})


class ModelDetailView(_OpenAIView):
    @extend_schema(
        responses={
            200: OpenApiResponse(description="One model: `provider/model`, a route or an alias."),
            404: OpenApiResponse(description="No such model (OpenAI's error shape)."),
        },
        summary="OpenAI-compatible model",
        operation_id="v1_models_retrieve",
        tags=["openai-compatible"],
    )
    async def get(self, request: Request, model: str) -> Response:
        created = int(time.time())
        if model in settings.MODEL_ALIASES:
            return Response(_model(model, "alias", created))
        view = await _view(request)
        if model in view.routes:
            return Response(_model(model, "route", created))
        name, _, bare = model.partition("/")
        registry = view.registry
        configured = bare and name in registry.names() and registry.is_configured(name)
        if configured and bare in await _provider_models(view, name):
            return Response(_model(model, name, created))
        raise OpenAIError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
            "model",
        )


def openai_not_found(request: HttpRequest) -> JsonResponse:
    """Any other path under /v1, as OpenAI answers it (its SDKs raise NotFoundError)."""
    error = OpenAIError(
        404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
    )
    return JsonResponse(error.body(), status=404)
