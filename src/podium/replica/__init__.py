"""The replica process: one runtime behind the wire protocols, with admission control.

`main` (the process entry, `python -m podium.replica`), `app` (the ASGI app), `server`
(uvicorn), `concurrency` (the limiter), `metrics`, `http` (raw ASGI helpers).
Imports nothing at package level, so the process can set thread limits before numpy loads.
"""
