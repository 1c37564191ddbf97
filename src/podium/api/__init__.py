"""Control plane REST API (FastAPI) under /api/v1.

`create_api(ApiContext(...))` builds the app; routes are thin and call `services`, and
`problems` alone turns errors into HTTP responses. Every route declares what it needs
(`access.needs(scope, From.X)`, `AUTHENTICATED` or `PUBLIC`); `audit` records every
mutating request and `headers` adds the security headers, both as pure ASGI middleware.
`ApiContext.tokens` is the token directory requests are checked against. May import
core, store, artifacts, backends and runtimes; never gateway, control, server or cli.
"""

from podium.api.app import create_api
from podium.api.deps import ApiContext

__all__ = ["ApiContext", "create_api"]
