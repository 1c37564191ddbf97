"""Hugging Face Inference API style: `POST /` with {"inputs": …, "parameters": {…}}; for
generative runtimes, text generation as Text Generation Inference answers it (`generation`).
"""

from podium.protocols.hf.codec import (
    HfRequest,
    decode_request,
    encode_response,
    sse,
    to_json_bytes,
)
from podium.protocols.hf.generation import (
    GenerateParams,
    GenerateRequest,
    GenerateStream,
    decode_generate,
    decode_params,
    error_event,
    generated,
)

__all__ = [
    "GenerateParams",
    "GenerateRequest",
    "GenerateStream",
    "HfRequest",
    "decode_generate",
    "decode_params",
    "decode_request",
    "encode_response",
    "error_event",
    "generated",
    "sse",
    "to_json_bytes",
]
