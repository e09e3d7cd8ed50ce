"""Tools: the code sandbox, outbound calls (webhooks, MCP) and the tool catalog."""

from .env import env

# Tools: custom code functions run under bubblewrap; webhooks and MCP URLs go through
# the outbound guard.
CODE_FUNCTIONS_ENABLED = env.bool("CODE_FUNCTIONS_ENABLED", default=True)
SANDBOX_TIMEOUT = env.float("SANDBOX_TIMEOUT", default=5.0)
# A call's memory and processes in total, over everything it forks: a cgroup per call
# where the service's cgroup tree is writable, else SANDBOX_MEMORY_MB shared out as
# address space over at most SANDBOX_FALLBACK_MAX_PROCS processes. SANDBOX_LIMIT_MODE:
# auto, cgroup (refuse calls without one), rlimit, or per_process (no total: opt-out).
SANDBOX_MEMORY_MB = env.int("SANDBOX_MEMORY_MB", default=256)
SANDBOX_MAX_PROCS = env.int("SANDBOX_MAX_PROCS", default=16)
SANDBOX_FALLBACK_MAX_PROCS = env.int("SANDBOX_FALLBACK_MAX_PROCS", default=4)
SANDBOX_LIMIT_MODE = env.str("SANDBOX_LIMIT_MODE", default="auto")
# Under cgroup v2 outside a container's own cgroup namespace, per-call cgroups are used
# only when the service's cgroup is delegated to it (systemd Delegate=yes): say so here.
SANDBOX_CGROUP_DELEGATED = env.bool("SANDBOX_CGROUP_DELEGATED", default=False)
SANDBOX_MAX_CONCURRENT = env.int("SANDBOX_MAX_CONCURRENT", default=4)
# Private hosts, IPs or CIDRs that webhooks and MCP servers may reach (e.g. 10.0.0.0/8).
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
# Plain http is only allowed towards allowlisted hosts; public URLs must be https.
OUTBOUND_TIMEOUT = env.float("OUTBOUND_TIMEOUT", default=10.0)
OUTBOUND_MAX_RESPONSE_BYTES = env.int("OUTBOUND_MAX_RESPONSE_BYTES", default=1_000_000)
# A PEM bundle of the certificate authorities outbound https calls trust instead of the
# default store (webhooks, MCP over HTTP and SSE, image fetches), e.g. an internal CA.
OUTBOUND_CA_FILE = env.str("OUTBOUND_CA_FILE", default="")
MCP_TIMEOUT = env.float("MCP_TIMEOUT", default=30.0)
# Seconds a process keeps a subtenant's list of server-side tools (0 = read it each time).
TOOL_CATALOG_CACHE_SECONDS = env.float("TOOL_CATALOG_CACHE_SECONDS", default=5.0)
