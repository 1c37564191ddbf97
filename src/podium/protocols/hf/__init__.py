"""Hugging Face Inference API style: `POST /` with {"inputs": …, "parameters": {…}}."""

from podium.protocols.hf.codec import HfRequest, decode_request, encode_response, to_json_bytes

__all__ = ["HfRequest", "decode_request", "encode_response", "to_json_bytes"]
