"""API-key authentication: `Authorization: Bearer <key>` on every /api/v1/ endpoint."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from tenants import limits
from tenants.models import ApiKey, Subtenant
from tenants.selectors import api_key_get_active, api_key_remembered
from tenants.services import api_key_touch, api_key_touch_due


class Principal:
    """Who is calling: an API key, and the subtenant it is bound to (None for admins)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    @property
    def subtenant(self) -> Subtenant | None:
        return self.key.subtenant

    @property
    def is_admin(self) -> bool:
        return self.key.is_admin

    def __str__(self) -> str:
        return self.key.prefix


def parse_bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate_raw_key(raw_key: str | None) -> ApiKey:
    """Resolve a raw key to an active ApiKey, or raise AuthenticationFailed."""
    if not raw_key:
        raise exceptions.NotAuthenticated("Missing API key: send 'Authorization: Bearer <key>'.")
    key = api_key_get_active(raw_key=raw_key)
    if key is None:
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
    if key.subtenant is not None and not key.subtenant.is_active:
        raise exceptions.AuthenticationFailed("This API key's subtenant is inactive.")
    api_key_touch(key=key, interval_seconds=settings.API_KEY_TOUCH_INTERVAL)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        raw = parse_bearer(header)
        if raw is None:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: use 'Bearer <key>'."
            )
        return self._principal(request, raw)

    def raw_key(self, request: Request) -> str | None:
        """The raw key this request authenticates with, None when it sends none or a
        malformed one."""
        meta = request.META
        return self.key_in(meta.get("HTTP_AUTHORIZATION"), meta.get("HTTP_X_API_KEY"))

    @staticmethod
    def key_in(authorization: str | None, x_api_key: str | None) -> str | None:
        """`raw_key` from the request's Authorization and x-api-key headers."""
        return parse_bearer(authorization)

    def _principal(self, request: Request, raw: str) -> tuple[Principal, ApiKey]:
        key = authenticate_raw_key(raw)
        # For the request log (llmwrapper.observability), which sees Django's request.
        request._request.api_key = key
        return Principal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyOrXApiKeyAuthentication(ApiKeyAuthentication):
    """`Authorization: Bearer <key>`, or `x-api-key: <key>` as Anthropic's clients send
    it (the Anthropic-compatible surface); the Authorization header wins when both come."""

    def authenticate(self, request: Request) -> tuple[Principal, ApiKey] | None:
        raw = request.META.get("HTTP_X_API_KEY", "").strip()
        if request.META.get("HTTP_AUTHORIZATION") or not raw:
            return super().authenticate(request)
        return self._principal(request, raw)

    @staticmethod
    def key_in(authorization: str | None, x_api_key: str | None) -> str | None:
        if authorization:
            return parse_bearer(authorization)
        return (x_api_key or "").strip() or None


def checks_in_memory(request: Request) -> bool:
    """Whether authenticating and rate-limiting `request` needs no I/O: its key is one
    this process remembers, active, with its use recorded within
    API_KEY_TOUCH_INTERVAL, and no request-rate limit counts it."""
    authenticators = request.authenticators
    if len(authenticators) != 1 or not isinstance(authenticators[0], ApiKeyAuthentication):
        return False
    raw = authenticators[0].raw_key(request)
    key = api_key_remembered(raw_key=raw) if raw else None
    if key is None or (key.subtenant is not None and not key.subtenant.is_active):
        return False
    if api_key_touch_due(key=key, interval_seconds=settings.API_KEY_TOUCH_INTERVAL):
        return False
    return not limits.request_checks_needed(key)


class IsApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, Principal)


class IsAdminKey(permissions.BasePermission):
    message = "This endpoint needs an admin API key."

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, Principal) and request.user.is_admin
