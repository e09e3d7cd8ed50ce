"""Embeddings, for every surface: `embed` resolves the model, checks that its provider
embeds, applies the token limits, splits the inputs into the vendor's batches, calls
it and records the call.

Before any call it raises for an unknown or unconfigured provider, one that does not
embed (Anthropic), token ids a vendor cannot take (Ollama), and used-up tokens or
budget, as a chat turn does. Models are named as for chats (`provider/model`, an alias
of MODEL_ALIASES, or a bare name for the subtenant's or the default provider).

Each batch (at most the adapter's `max_embedding_inputs`, a few at a time) is retried
like a model call of a turn: 429, 5xx, timeouts and broken connections, with the same
backoff, and all of them within PROVIDER_TOTAL_TIMEOUT. No fallbacks: another vendor's
vectors would not be comparable. One `LlmCall` (source "embeddings") records the
request with the tokens of every batch the vendor answered, also when another failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from llmwrapper.errors import ValidationFailedError
from llmwrapper.observability.context import LlmCallNote, note_llm_call
from pipeline.spec import TurnSpec
from pipeline.turn import resolve_targets
from providers import gateway
from providers import records as call_records
from providers.core.base import EmbeddingsNotSupportedError, Provider
from providers.core.errors import ProviderError
from providers.core.retry import Deadline, RetryPolicy
from providers.core.types import EmbeddingRequest, EmbeddingResult, Usage
from providers.models import LlmCall
from tenants import limits
from tenants.models import ApiKey, Subtenant

logger = logging.getLogger(__name__)

# Batches of one request in flight at once: faster for large requests, gentle on the
# vendor's rate limits.
PARALLEL_BATCHES = 4

Inputs = tuple[str, ...] | tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class EmbedSpec:
    subtenant: Subtenant
    api_key: ApiKey | None
    model: str  # "provider/model", an alias, or a bare model name
    inputs: Inputs  # texts, or token-id arrays (never both)
    provider: str | None = None
    dimensions: int | None = None


@dataclass(frozen=True)
class Embedded:
    provider: str
    model: str
    vectors: tuple[Sequence[float], ...]  # one per input, in order
    usage: Usage


async def embed(spec: EmbedSpec) -> Embedded:
    """Embed the spec's inputs (see the module docstring)."""
    view = await gateway.view_for(spec.subtenant)
    target, _ = resolve_targets(
        TurnSpec(
            subtenant=spec.subtenant,
            api_key=spec.api_key,
            source=LlmCall.Source.EMBEDDINGS,
            provider=spec.provider,
            model=spec.model,
            fallbacks=[],
        ),
        view,
    )
    if target.route is not None:  # embeddings take a route's first deployment
        first = target.route.deployments[0]
        target = gateway.Target(first.connection, first.model)
    provider = view.registry.get(target.provider)
    _check(target.provider, provider, spec.inputs, view)
    if limits.token_checks_needed(spec.subtenant, spec.api_key):
        await sync_to_async(limits.check_tokens)(spec.subtenant, spec.api_key)
    model = target.model or provider.default_model
    size = max(1, provider.max_embedding_inputs)
    requests = [
        EmbeddingRequest(model, spec.inputs[start : start + size], spec.dimensions)
        for start in range(0, len(spec.inputs), size)
    ]
    answered: list[Usage] = []
    started = time.perf_counter()
    status, error = LlmCall.Status.INTERRUPTED, None
    try:
        results = await _embed_all(provider, requests, gateway.turn_options().policy, answered)
        status = LlmCall.Status.OK
    except ProviderError as exc:
        status, error = LlmCall.Status.ERROR, exc
        raise
    except Exception:
        status = LlmCall.Status.ERROR
        raise
    finally:
        await _record(
            spec,
            provider=target.provider,
            model=model,
            status=status,
            error=error,
            usage=sum(answered, Usage()),
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
    vectors = tuple(v for result in results for v in result.vectors)
    return Embedded(target.provider, model, vectors, sum(answered, Usage()))


def _check(name: str, provider: Provider, inputs: Inputs, view: gateway.View) -> None:
    capabilities = gateway.capabilities(name, view)
    if capabilities is not None and not capabilities.embeddings:
        raise EmbeddingsNotSupportedError(name, _embedding_providers(view))
    if inputs and not isinstance(inputs[0], str) and not provider.embeds_token_ids:
        message = f"Provider '{name}' embeds text only: send strings, not token ids."
        raise ValidationFailedError(message, details={"input": [message]})


def _embedding_providers(view: gateway.View) -> tuple[str, ...]:
    names = view.registry.names()
    return tuple(
        n for n in names if (c := gateway.capabilities(n, view)) is not None and c.embeddings
    )


async def _embed_all(
    provider: Provider,
    requests: list[EmbeddingRequest],
    policy: RetryPolicy,
    answered: list[Usage],
) -> list[EmbeddingResult]:
    """Every batch's result, in order; the first failure cancels the rest."""
    deadline = Deadline(policy.total_timeout)
    gate = asyncio.Semaphore(PARALLEL_BATCHES)

    async def one(request: EmbeddingRequest) -> EmbeddingResult:
        async with gate:
            result = await _with_retries(provider, request, policy, deadline)
        answered.append(result.usage)
        return result

    try:
        async with asyncio.timeout_at(deadline.when) as scope:
            if len(requests) == 1:
                return [await one(requests[0])]
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(request)) for request in requests]
            return [task.result() for task in tasks]
    except TimeoutError:
        if not scope.expired():
            raise
        raise deadline.error(provider.name) from None
    except BaseExceptionGroup as failures:
        raise _first(failures) from None


def _first(failures: BaseExceptionGroup) -> BaseException:
    """The failure to report: a provider's error, if any batch had one."""
    leaves = list(_leaves(failures))
    return next((e for e in leaves if isinstance(e, ProviderError)), leaves[0])


def _leaves(failures: BaseExceptionGroup):  # type: ignore[no-untyped-def]
    for exc in failures.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def _with_retries(
    provider: Provider, request: EmbeddingRequest, policy: RetryPolicy, deadline: Deadline
) -> EmbeddingResult:
    attempt = 0
    while True:
        try:
            return await provider.embed(request)
        except ProviderError as exc:
            if not exc.retryable or attempt >= policy.max_retries:
                raise
            delay = policy.delay(attempt, exc)
            if not deadline.allows(provider, delay):
                raise
            logger.warning(
                "provider %s failed to embed (%s, upstream %s); retry %d in %.2fs",
                provider.name,
                exc.type,
                exc.upstream_status,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


async def _record(
    spec: EmbedSpec,
    *,
    provider: str,
    model: str,
    status: str,
    error: ProviderError | None,
    usage: Usage,
    latency_ms: int,
) -> None:
    """Hand the call's record to the writer (or store it now, shielded from a client
    that leaves); its tokens count against the limits. The request log shows it too."""
    error_type = error.type if error else ""
    note_llm_call(LlmCallNote(provider, model, usage.input_tokens, 0, error_type))
    record = LlmCall(
        subtenant=spec.subtenant,
        api_key=spec.api_key,
        source=LlmCall.Source.EMBEDDINGS,
        provider=provider,
        model=model,
        status=status,
        error_type=error_type,
        upstream_status=error.upstream_status if error else None,
        **usage.record_fields(),
        latency_ms=latency_ms,
    )
    if call_records.in_background():
        call_records.writer().submit([record])
    else:
        await asyncio.shield(sync_to_async(call_records.store)([record]))
