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

Each layer is a module of this package: `text`, `structure` and `log_filter`.
"""

from llmwrapper.observability.redaction.log_filter import SERVER_LOGGERS, RedactSecrets, install
from llmwrapper.observability.redaction.structure import redact_body, redact_structure
from llmwrapper.observability.redaction.text import REDACTED, is_credential_name, redact_text

__all__ = [
    "REDACTED",
    "SERVER_LOGGERS",
    "RedactSecrets",
    "install",
    "is_credential_name",
    "redact_body",
    "redact_structure",
    "redact_text",
]
