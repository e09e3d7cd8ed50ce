from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Provider connections and routes"
    default_auto_field = "django.db.models.BigAutoField"
