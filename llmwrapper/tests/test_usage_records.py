"""What the usage dashboard is built from: every call record names its model, and every
subtenant's usage per period is counted, budget or not."""

import threading

import pytest
from django.db.backends.signals import connection_created

from providers.models import LlmCall
from providers.records import wait_idle
from tenants.models import TokenUsage

pytestmark = pytest.mark.django_db(transaction=True)


def complete(client, **fields):
    body = {"messages": [{"role": "user", "content": "two words"}], **fields}
    return client.post("/api/v1/llm/complete", body, format="json")


def test_usage_per_period_is_counted_without_a_budget(make_tenant, llm_fakes):
    subtenant, _, client = make_tenant("no-budget")
    assert subtenant.token_budget is None and subtenant.budget_usd is None
    llm_fakes.openai.enqueue(text="a", usage=(6, 4)).enqueue(text="b", usage=(3, 2))

    assert complete(client).status_code == 200
    assert complete(client).status_code == 200
    wait_idle()

    assert TokenUsage.objects.get(subtenant=subtenant).tokens == 15


def test_a_failed_call_without_a_model_is_recorded_under_the_default_model(
    make_tenant, llm_fakes, settings
):
    settings.PROVIDER_MAX_RETRIES = 0
    subtenant, _, client = make_tenant("failing")
    llm_fakes.openai.enqueue(status=500)

    assert complete(client, provider="openai").status_code == 502
    wait_idle()

    record = LlmCall.objects.get(subtenant=subtenant)
    assert (record.status, record.provider) == ("error", "openai")
    assert record.model == settings.OPENAI_DEFAULT_MODEL


def test_a_failed_call_keeps_the_model_it_asked_for(make_tenant, llm_fakes, settings):
    settings.PROVIDER_MAX_RETRIES = 0
    subtenant, _, client = make_tenant("failing-named")
    llm_fakes.anthropic.enqueue(status=500)

    assert complete(client, model="anthropic/claude-haiku-4-5").status_code == 502
    wait_idle()

    record = LlmCall.objects.get(subtenant=subtenant)
    assert (record.provider, record.model) == ("anthropic", "claude-haiku-4-5")


def test_records_that_arrive_together_are_stored_in_one_batch(make_tenant, llm_fakes, settings):
    """Observed on the writer's own database connection: one INSERT for three calls."""
    settings.CALL_RECORDS_IN_BACKGROUND = True
    settings.CALL_RECORDS_BATCH_SECONDS = 60.0  # only the flush below ends the gathering
    inserts: list[str] = []
    watched = []

    def count_inserts(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "providers_llmcall"'):
            inserts.append(sql)
        return execute(sql, params, many, context)

    def watch(sender, connection, **kwargs):
        # The writer opens a connection for each batch it stores.
        writer = threading.current_thread().name == "llm-call-records"
        if writer and count_inserts not in connection.execute_wrappers:
            connection.execute_wrappers.append(count_inserts)
            watched.append(connection)

    connection_created.connect(watch)
    try:
        subtenant, _, client = make_tenant("batched")
        for _ in range(3):
            llm_fakes.openai.enqueue(text="a", usage=(2, 1))
            assert complete(client).status_code == 200

        assert wait_idle(timeout=10)  # asks for the flush instead of waiting a minute
    finally:
        connection_created.disconnect(watch)
        for connection in watched:
            connection.execute_wrappers.remove(count_inserts)
    assert len(inserts) == 1
    assert LlmCall.objects.filter(subtenant=subtenant).count() == 3
    assert TokenUsage.objects.get(subtenant=subtenant).tokens == 9
