"""The `podium` command line (typer + rich).

Talks to a Podium server only through its REST API, via `podium.client`; the one exception
is `podium up`, which imports `podium.server` lazily to run a server here.
"""
