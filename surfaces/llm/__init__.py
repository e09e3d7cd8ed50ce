"""The direct LLM API (`/api/v1/llm/...`): a turn with no chat."""
