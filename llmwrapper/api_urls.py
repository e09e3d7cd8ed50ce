"""Every /api/v1/ route, at exactly the paths of the public contract (no trailing slashes)."""

from django.urls import path

from chats.api import AttachmentView, ChatViewSet, SubtenantChatViewSet
from connections.api import ConnectionDetailView, ConnectionsView, RouteDetailView, RoutesView
from memories.api import MemoryViewSet
from providers.prices_api import PriceViewSet
from surfaces.chats.api import MessagesView, StreamMessageView
from surfaces.embeddings import EmbedView
from surfaces.llm.api import CompleteView, ModelsView, StreamView, UsageView
from tenants.api import ApiKeyViewSet, SubtenantViewSet
from tools.api import (
    FunctionDetailView,
    FunctionExecuteView,
    FunctionListView,
    FunctionRegisterView,
    McpServerDetailView,
    McpServersView,
    McpToolExecuteView,
    McpToolsView,
)

collection = {"get": "list", "post": "create"}
item = {"get": "retrieve", "put": "update", "patch": "update", "delete": "destroy"}

urlpatterns = [
    path("connections", ConnectionsView.as_view(), name="connection-list"),
    path("connections/<str:name>", ConnectionDetailView.as_view(), name="connection-detail"),
    path("routes", RoutesView.as_view(), name="route-list"),
    path("routes/<str:name>", RouteDetailView.as_view(), name="route-detail"),
    path("llm/complete", CompleteView.as_view(), name="llm-complete"),
    path("llm/stream", StreamView.as_view(), name="llm-stream"),
    path("llm/models", ModelsView.as_view(), name="llm-models"),
    path("llm/embed", EmbedView.as_view(), name="llm-embed"),
    path("subtenants", SubtenantViewSet.as_view(collection), name="subtenant-list"),
    path("subtenants/<uuid:pk>", SubtenantViewSet.as_view(item), name="subtenant-detail"),
    path(
        "subtenants/<uuid:subtenant_pk>/keys",
        ApiKeyViewSet.as_view(collection),
        name="subtenant-key-list",
    ),
    path(
        "subtenants/<uuid:subtenant_pk>/keys/<uuid:pk>",
        ApiKeyViewSet.as_view({"delete": "destroy"}),
        name="subtenant-key-detail",
    ),
    path("subtenants/<uuid:subtenant_pk>/usage", UsageView.as_view(), name="subtenant-usage"),
    path("prices", PriceViewSet.as_view(collection), name="price-list"),
    path("prices/<uuid:pk>", PriceViewSet.as_view(item), name="price-detail"),
    path("keys", ApiKeyViewSet.as_view(collection), name="admin-key-list"),
    path("keys/<uuid:pk>", ApiKeyViewSet.as_view({"delete": "destroy"}), name="admin-key-detail"),
    path(
        "subtenants/<uuid:subtenant_pk>/chats",
        SubtenantChatViewSet.as_view(collection),
        name="chat-list",
    ),
    path("chats/<uuid:pk>", ChatViewSet.as_view(item), name="chat-detail"),
    path(
        "chats/<uuid:chat_pk>/messages",
        MessagesView.as_view(),
        name="message-list",
    ),
    path(
        "chats/<uuid:chat_pk>/messages/stream",
        StreamMessageView.as_view(),
        name="message-stream",
    ),
    path(
        "chats/<uuid:chat_pk>/attachments/<uuid:attachment_id>",
        AttachmentView.as_view(),
        name="chat-attachment",
    ),
    path(
        "subtenants/<uuid:subtenant_pk>/memories",
        MemoryViewSet.as_view(collection),
        name="memory-list",
    ),
    path(
        "subtenants/<uuid:subtenant_pk>/memories/<str:key>",
        MemoryViewSet.as_view(item),
        name="memory-detail",
    ),
    path("functions", FunctionListView.as_view(), name="function-list"),
    path("functions/register", FunctionRegisterView.as_view(), name="function-register"),
    path("functions/<str:name>", FunctionDetailView.as_view(), name="function-detail"),
    path("functions/<str:name>/execute", FunctionExecuteView.as_view(), name="function-execute"),
    path("mcp/servers", McpServersView.as_view(), name="mcp-servers"),
    path("mcp/servers/<str:name>", McpServerDetailView.as_view(), name="mcp-server-detail"),
    path("mcp/tools", McpToolsView.as_view(), name="mcp-tools"),
    path("mcp/tools/<str:name>/execute", McpToolExecuteView.as_view(), name="mcp-tool-execute"),
]
