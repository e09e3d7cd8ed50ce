"""Anthropic-compatible endpoints: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Anthropic's clients work against the gateway by changing their base URL to the
gateway's root and their API key to a subtenant key (sent as `x-api-key` or a Bearer
token). `model` picks the provider as on `/v1/chat/completions` (`provider/model`, an
alias of MODEL_ALIASES, or a bare name), so any provider answers in Anthropic's format.
The request runs through the turn pipeline like every other surface; errors come in
Anthropic's shape, with the statuses its SDK maps to its exceptions.
"""
