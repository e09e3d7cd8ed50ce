"""Credentials in any text: our API keys (`lw_...`), vendor keys (`sk-...`), values of
credential query or form parameters, `Bearer`/`Basic` credentials and credential header
values, the password of a URL's userinfo, and quoted fields named like credentials."""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote_plus

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
