"""Credentials kept out of every log line: in text, and in bodies by their structure.

Three layers, from the cheapest:

- `redact_text` for any text: our API keys (`lw_...`), vendor keys (`sk-...`), values
  of credential query or form parameters (`?api_key=`, `&token=`, names decoded
  first, so `api%5Fkey` counts too), `Bearer`/`Basic` credentials and
  `Authorization`/`X-Api-Key`-style header values, the password of a URL's userinfo,
  and quoted fields named like credentials (`"secret": ...`, `'api\\u005fkey': ...`).
- `redact_structure` for parsed JSON: values of keys named like credentials are
  replaced whatever they hold, every other string goes through `redact_text`.
- `RedactSecrets`, a logging filter, applies `redact_text` to each record's message,
  arguments and traceback; `install` puts it on every handler of the process and on
  the loggers of the servers that run us (uvicorn, daphne), so their lines are
  covered as well as ours, whatever command line started the server.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from llmwrapper import safejson

REDACTED = "[redacted]"

# Names are compared squashed: lower case, letters and digits only ("X-Api-Key",
# "api_key" and "apiKey" are all "apikey").
_CREDENTIAL_NAMES = frozenset(
    {
        "apikey",
        "xapikey",
        "rawkey",
        "secret",
        "clientsecret",
        "secretkey",
        "privatekey",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "sessiontoken",
        "authorization",
        "proxyauthorization",
        "credential",
        "credentials",
        "cookie",
        "setcookie",
        "sessionid",
        "signature",
        "xamzsignature",
        "xamzcredential",
        "xamzsecuritytoken",
        # Whole objects of secrets: a webhook's or MCP server's headers, a process env.
        "headers",
        "env",
    }
)
_CREDENTIAL_SUFFIXES = (
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "privatekey",
    "secretaccesskey",
)
# Only as URL/form parameter names: `?key=` is Google's API key, `?sig=` a signature;
# as JSON fields they are ordinary (a memory's `key`).
_QUERY_ONLY_NAMES = frozenset({"key", "auth", "sig", "code"})
_SQUASH = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)  # the same few names recur in every body and line
def is_credential_name(name: str, *, parameter: bool = False) -> bool:
    """Whether a field, header or (with `parameter`) URL parameter name holds a secret."""
    squashed = _SQUASH.sub("", name.lower())
    if squashed in _CREDENTIAL_NAMES or squashed.endswith(_CREDENTIAL_SUFFIXES):
        return True
    return parameter and squashed in _QUERY_ONLY_NAMES


# Any of these in a text means a closer look; most log lines have none of them. (Plain
# substring tests: a case-insensitive regex alternation costs ten times as much.)
_HINTS = (
    "=",
    "@",
    "\\u",
    "lw_",
    "lw%5f",
    "sk-",
    "bearer",
    "basic",
    "authori",
    "key",
    "token",
    "secret",
    "passw",
    "cookie",
    "sig",
)


def _has_hint(text: str) -> bool:
    return any(map(text.lower().__contains__, _HINTS))


_OUR_KEY = re.compile(r"\blw(?:_|%5[fF])[A-Za-z0-9_\-%]{8,}")
_VENDOR_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)(\s+)([A-Za-z0-9._~+/=\-{}%:]{8,})", re.I)
# What tells a credential from a word ("Basic settings", "Token usage"): a digit, a
# symbol, or a capital after the first letter.
_CREDENTIAL_LIKE = re.compile(r"[0-9._~+/=\-{}%:]|.[A-Z]")
_HEADER = re.compile(
    r"\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|x-goog-api-key|"
    r"cookie|set-cookie)"
    r"(\s*[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(Bearer|Basic|Token|Digest)\s+)?([^\s\"',;&]+)",
    re.IGNORECASE,
)
# A parameter's name; its value is only read (and skipped) when the name is a
# credential's, so parameters inside another's value (a URL in `?next=`) are found too.
_PARAMETER_NAME = re.compile(r"(?:^|(?<=[?&;#\s/\"'(\[,]))([A-Za-z0-9_.%\-\[\]]+)=")
_PARAMETER_VALUE_END = re.compile(r"[&\s#\"'<>;,)\]]|$")
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"']*):([^@/\s\"']+)@")
_FIELD_NAME = re.compile(r"([\"'])((?:[A-Za-z0-9_\-]|\\u[0-9a-fA-F]{4})+)\1(\s*:\s*)")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def redact_text(text: str) -> str:
    """The text with every credential it visibly holds replaced by `[redacted]`."""
    if not _has_hint(text):
        return text
    if ":" in text:
        # First: the patterns below cannot tell where a structured value ends.
        text = _redact_quoted_fields(text)
    if "=" in text:
        text = _redact_parameters(text)
    text = _OUR_KEY.sub("lw_" + REDACTED, text)
    text = _VENDOR_KEY.sub("sk-" + REDACTED, text)
    text = _USERINFO.sub(r"\1:" + REDACTED + "@", text)
    text = _HEADER.sub(_header_value, text)
    return _SCHEME_CREDENTIAL.sub(_scheme_credential, text)


def _scheme_credential(match: re.Match[str]) -> str:
    if not _CREDENTIAL_LIKE.search(match[3]):
        return match[0]
    return f"{match[1]}{match[2]}{REDACTED}"


def _header_value(match: re.Match[str]) -> str:
    scheme = f"{match[3]} " if match[3] else ""
    return f"{match[1]}{match[2]}{scheme}{REDACTED}"


def _redact_parameters(text: str) -> str:
    parts: list[str] = []
    position = 0
    for match in _PARAMETER_NAME.finditer(text):
        start = match.end()
        if match.start() < position or text.startswith(REDACTED, start):
            continue
        if not is_credential_name(unquote_plus(match[1]), parameter=True):
            continue
        if start < len(text) and text[start] in "\"'":
            start += 1  # a quoted value: the quotes stay
            end = text.find(text[start - 1], start)
            end = len(text) if end < 0 else end
        else:
            end = _PARAMETER_VALUE_END.search(text, start).start()  # type: ignore[union-attr]
        if end == start:
            continue
        parts.append(text[position:start])
        parts.append(REDACTED)
        position = end
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


def _redact_quoted_fields(text: str) -> str:
    """`"name": value` pairs (JSON, or Python reprs) whose decoded name is a credential.

    The value is skipped by its syntax (a string, or an object or array with its
    nesting), so braces or quotes inside it cannot end it early; an unterminated value
    is redacted to the end of the text.
    """
    parts: list[str] = []
    position = 0
    for match in _FIELD_NAME.finditer(text):
        if match.start() < position:
            continue  # inside a value already redacted
        name = _ESCAPE.sub(lambda m: chr(int(m[1], 16)), match[2])
        if not is_credential_name(name):
            continue
        start = match.end()
        end = _value_end(text, start)
        if end == start:
            continue
        parts.append(text[position:start])
        parts.append(f'"{REDACTED}"')
        position = end
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


_CLOSERS = {"{": "}", "[": "]"}


def _value_end(text: str, start: int) -> int:
    """Where the JSON-like value starting at `start` ends (the text's end if it does not)."""
    if start >= len(text):
        return start
    first = text[start]
    if first in "\"'":
        return _string_end(text, start)
    if first in _CLOSERS:
        stack = [_CLOSERS[first]]
        index = start + 1
        while index < len(text) and stack:
            char = text[index]
            if char in "\"'":
                index = _string_end(text, index)
                continue
            if char in _CLOSERS:
                stack.append(_CLOSERS[char])
            elif char == stack[-1]:
                stack.pop()
            index += 1
        return index
    index = start
    while index < len(text) and text[index] not in ",}]\r\n":
        index += 1
    return index


def _string_end(text: str, start: int) -> int:
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            return index + 1
        index += 1
    return len(text)


def redact_structure(value: Any) -> Any:
    """A copy of a parsed JSON value with credential fields and visible secrets redacted."""
    if isinstance(value, dict):
        return {
            redact_text(key): REDACTED if is_credential_name(key) else redact_structure(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_structure(item) for item in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def _redact_string(value: str) -> str:
    stripped = value.lstrip()
    if stripped[:1] in ("{", "["):
        # JSON inside a string (tool-call arguments): redacted by its own structure.
        try:
            inner = safejson.loads(value)
        except safejson.UnsafeJsonError:
            pass
        else:
            return _dumps(redact_structure(inner))
    return redact_text(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def redact_body(text: str) -> str:
    """A request or response body, redacted: by structure when it is JSON, else per line
    (each line that is JSON, or an SSE `data:` line holding JSON, by its structure)."""
    try:
        return _dumps(redact_structure(safejson.loads(text)))
    except safejson.UnsafeJsonError:
        pass
    lines = text.split("\n")
    for number, line in enumerate(lines):
        head, payload = ("data: ", line[5:]) if line.startswith("data:") else ("", line)
        candidate = payload.strip()
        if candidate[:1] in ("{", "["):
            try:
                lines[number] = head + _dumps(redact_structure(safejson.loads(candidate)))
                continue
            except safejson.UnsafeJsonError:
                pass
        lines[number] = redact_text(line)
    return "\n".join(lines)


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
