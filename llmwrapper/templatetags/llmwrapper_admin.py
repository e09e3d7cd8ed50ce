"""Template tags of the admin's pages (llmwrapper/templates/admin/)."""

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def demo_mode() -> bool:
    """Whether the service runs as the demo (make demo): the admin says so on every page."""
    return bool(settings.DEMO)
