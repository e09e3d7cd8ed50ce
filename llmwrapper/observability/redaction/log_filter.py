"""The logging filter that redacts every record of the process, and its installation on
the handlers and on the loggers of the servers that run the application."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from llmwrapper.observability.redaction.text import redact_text

_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Redacts each record in place: message, string arguments, traceback, stack.

    Arguments are redacted one by one so that formatters which read them (uvicorn's
    access formatter unpacks its five) keep working; when a secret survives in an
    argument that is not a string, the record is collapsed to its redacted message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # On a server logger and again on its handler: the first pass is enough.
        if getattr(record, "_redacted", False):
            return True
        record._redacted = True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left to the formatter to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            if isinstance(record.msg, str):
                record.msg = redact_text(record.msg)
            record.args = _redact_args(record.args)
            try:
                still = record.getMessage()
            except Exception:
                still = ""
            if redact_text(still) != still or not still:
                record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(redact_text(arg) if isinstance(arg, str) else arg for arg in args)
    if isinstance(args, Mapping):
        return {
            key: redact_text(value) if isinstance(value, str) else value
            for key, value in args.items()
        }
    return args


# Loggers whose records carry request lines of the servers that run the application.
SERVER_LOGGERS = (
    "uvicorn.access",
    "uvicorn.error",
    "django.channels.server",
    "django.server",
    "django.request",
    "daphne.server",
    "daphne.cli",
    "daphne.http_protocol",
    "daphne.ws_protocol",
)


def install() -> None:
    """Put the filter on every handler and server logger of the process, and redact the
    paths daphne hands its access log (which writes to stdout without `logging`).

    Called when the ASGI application is imported, after the server and Django have set
    up logging; idempotent.
    """
    for handler in _all_handlers():
        _add_filter(handler)
    for name in SERVER_LOGGERS:
        _add_filter(logging.getLogger(name))
    _redact_daphne_actions()


def _all_handlers() -> list[logging.Handler]:
    handlers: list[logging.Handler] = list(logging.root.handlers)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    return handlers


def _add_filter(target: logging.Filterer) -> None:
    if not any(isinstance(existing, RedactSecrets) for existing in target.filters):
        target.addFilter(RedactSecrets())


def _redact_daphne_actions() -> None:
    """daphne's access log (`daphne` on the command line) and runserver's console lines
    both come from `Server.log_action`: the path (with its query) is redacted there."""
    server_module = sys.modules.get("daphne.server")
    if server_module is None:
        return
    server_class = server_module.Server
    original: Callable[..., None] = server_class.log_action
    if getattr(original, "redacts_paths", False):
        return

    def log_action(self: Any, protocol: str, action: str, details: dict[str, Any]) -> None:
        path = details.get("path")
        if isinstance(path, str):
            details = {**details, "path": redact_text(path)}
        original(self, protocol, action, details)

    log_action.redacts_paths = True  # type: ignore[attr-defined]
    server_class.log_action = log_action
