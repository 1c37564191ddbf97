"""The web dashboard: static files served at `/` and `/ui/…` (issue 15).

A client of the control API (`/api/v1`) and the gateway like any other: the page logs in
with a token (`POST /api/v1/session`: HttpOnly cookie + CSRF header), then fetches JSON.
No server-side rendering, no CDN, no build step: `static/` holds the page, its ES modules
and the vendored libraries (`static/vendor/README.md`).

    app      `create_web()`: the ASGI app (index, assets, security headers)
    static/  index.html, app.css, js/ (main, api, router, ui, chart, pages/), vendor/
"""
