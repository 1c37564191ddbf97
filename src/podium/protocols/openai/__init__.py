"""OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
`/v1/models`. Request validation (errors name the OpenAI `param`) and response documents,
including the server-sent event chunks of streams. No I/O.
"""

from podium.protocols.openai.requests import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    Sampling,
    decode_chat_request,
    decode_completion_request,
    decode_embedding_request,
)
from podium.protocols.openai.responses import (
    DONE,
    ChatStream,
    Choice,
    CompletionStream,
    chat_completion,
    completion,
    embeddings,
    error_body,
    error_status,
    model_list,
    new_id,
    sse,
    usage,
)

__all__ = [
    "DONE",
    "ChatRequest",
    "ChatStream",
    "Choice",
    "CompletionRequest",
    "CompletionStream",
    "EmbeddingRequest",
    "Sampling",
    "chat_completion",
    "completion",
    "decode_chat_request",
    "decode_completion_request",
    "decode_embedding_request",
    "embeddings",
    "error_body",
    "error_status",
    "model_list",
    "new_id",
    "sse",
    "usage",
]
