"""Data plane: routes `/endpoints/{name}/…` (and the OpenAI router's `/v1/…`) to the
endpoint's ready replicas.

Pure ASGI on the hot path: plain dicts and bytes, no database, no pydantic per request.
Reads the routing table the controller publishes (`podium.core.routing`); may import
`podium.core` and lower layers, never `api`, `control` or `server`.

    app        Gateway: the ASGI app, lifespan, routing and the answers it makes itself
    activator  replica slots (max_concurrency), holding requests until one frees, wake
    openai_router   /v1/…: routes by the body's `model`, lists endpoints as models
    balancer   power of two choices on outstanding requests, ejection of failed replicas
    proxy      forward, retry elsewhere, stream back (through a transport)
    transport  the seam to replicas: Transport, UpstreamResponse, UpstreamFailed/Broken
    http1      default transport: a pool of keep-alive HTTP/1.1 connections per replica
    connection one such connection (asyncio protocol + httptools parser) and its exchange
    aiohttp_transport   the alternative: one shared aiohttp ClientSession
    body       request bodies: buffered (retryable) or streamed, with the size limit
    headers    hop-by-hop stripping, request id, x-forwarded-*
    metering   per-endpoint counters and their Prometheus collector
    responses  its own errors: problem+json (core/problems), or OpenAI's body under /v1/
"""

from podium.gateway.app import Gateway

__all__ = ["Gateway"]
