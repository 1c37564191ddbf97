"""The replica process: one runtime behind the wire protocols, with admission control.

`main` (the process entry, `python -m podium.replica`; `zygote` forks it preloaded),
`app` (the ASGI app: probes, info, metrics, dispatch), `routes_hf` / `routes_openai` /
`routes_v2` (the protocols' routes), `context` (what routes share: runtime, admission,
worker pool), `streaming` (iterators in a worker thread, sent as server-sent events),
`batching` (dynamic batching), `server` (uvicorn), `concurrency` (the limiter),
`metrics`, `http` (raw ASGI helpers).
Imports nothing at package level, so the process can set thread limits before numpy loads.
"""
