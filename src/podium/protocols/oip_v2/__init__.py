"""Open Inference Protocol v2 (KServe / Triton): schemas, codec and validation, no I/O.

The binary tensor data extension (`binary`) is supported both ways, as `tritonclient`
uses it by default.
"""

from podium.protocols.oip_v2.binary import EXTENSION as BINARY_EXTENSION
from podium.protocols.oip_v2.binary import HEADER as BINARY_HEADER
from podium.protocols.oip_v2.codec import (
    InferRequest,
    decode_infer_request,
    decode_tensor,
    encode_infer_body,
    encode_infer_response,
    encode_tensor,
)
from podium.protocols.oip_v2.schemas import error, model_config, model_metadata, server_metadata
from podium.protocols.oip_v2.validation import check_inputs, check_outputs

__all__ = [
    "BINARY_EXTENSION",
    "BINARY_HEADER",
    "InferRequest",
    "check_inputs",
    "check_outputs",
    "decode_infer_request",
    "decode_tensor",
    "encode_infer_body",
    "encode_infer_response",
    "encode_tensor",
    "error",
    "model_config",
    "model_metadata",
    "server_metadata",
]
