"""Open Inference Protocol v2 (KServe / Triton): schemas, codec and validation, no I/O."""

from podium.protocols.oip_v2.codec import (
    InferRequest,
    decode_infer_request,
    decode_tensor,
    encode_infer_response,
    encode_tensor,
)
from podium.protocols.oip_v2.schemas import error, model_metadata, server_metadata
from podium.protocols.oip_v2.validation import check_inputs, check_outputs

__all__ = [
    "InferRequest",
    "check_inputs",
    "check_outputs",
    "decode_infer_request",
    "decode_tensor",
    "encode_infer_response",
    "encode_tensor",
    "error",
    "model_metadata",
    "server_metadata",
]
