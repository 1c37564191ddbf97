"""Wire protocols a replica speaks: request/response schemas and codecs, no I/O.

`hf`: Hugging Face Inference API style (`POST /` with {"inputs", "parameters"}) and TGI
text generation.
`oip_v2`: Open Inference Protocol v2 (KServe / Triton `/v2/...`), binary data too.
`openai`: OpenAI-compatible `/v1/...` (chat completions, completions, embeddings, models).
Each codec turns bytes into plain Python / numpy values and back, raising
`core.errors.Invalid` (with the offending field) for anything malformed.
"""
