"""Data plane: routes `/endpoints/{name}/…` (and the OpenAI router's `/v1/…`) to the
endpoint's ready replicas.

Pure ASGI on the hot path: plain dicts and bytes, no database, no pydantic per request.
Reads the routing table the controller publishes (through `podium.core.routing`'s
`RoutingSource`); may import `podium.core` and lower layers, never `api`, `control` or
`server`. Inside, the layers are checked by `.importlinter` (contract `gateway`).

    app        Gateway: the ASGI app, lifespan, resolving `/endpoints/{name}/…` and
               `/p/{project}/endpoints/{name}/…` to a route
    openai_router   /v1/…: resolves the body's `model` to a route, lists endpoints as models
    access     the access stage: token or session cookie, visibility, rate limits (429)
    recording  the record stage: one request record per invocation, into a RecordBuffer
    rate_limit token buckets per token and per endpoint
    pipeline   every invocation once routed: metering, stages (auth, limits, records),
               refusals, body, admission, forward
    activator  replica slots (max_concurrency), holding requests until one frees, wake
    balancer   power of two choices on outstanding requests, ejection of failed replicas
    proxy      forward, retry elsewhere, stream back (through a transport)
    invocation one request as the stages see it, and what the pipeline and proxy note on
               it for the record (replica, times, bytes, stream events, error class)
    transport  the seam to replicas: Transport, UpstreamResponse, UpstreamFailed/Broken
    http1      default transport: a pool of keep-alive HTTP/1.1 connections per replica
    connection one such connection (asyncio protocol + httptools parser) and its exchange
    aiohttp_transport   the alternative: one shared aiohttp ClientSession
    body       request bodies: buffered (retryable) or streamed, with the size limit
    headers    hop-by-hop stripping, request id, x-forwarded-*
    metering   per-endpoint and per-replica counters, their Prometheus collector, the
               service snapshot (the metrics history's source)
    capture    payload capture: cutting and redacting bodies stored with records
    responses  its own errors: problem+json (core/problems), or OpenAI's body under /v1/
"""

from podium.gateway.access import AccessStage
from podium.gateway.app import Gateway

__all__ = ["AccessStage", "Gateway"]
