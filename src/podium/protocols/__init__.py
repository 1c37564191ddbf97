"""Wire protocols a replica speaks: request/response schemas and codecs, no I/O.

`hf`: Hugging Face Inference API style (`POST /` with {"inputs", "parameters"}).
`oip_v2`: Open Inference Protocol v2 (KServe / Triton `/v2/...`).
Each codec turns bytes into plain Python / numpy values and back, raising
`core.errors.Invalid` (with the offending field) for anything malformed.
"""
