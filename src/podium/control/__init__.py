"""The controller: reconciles desired state (store) with observed replicas (backend).

`loop.Controller` runs the loop and fixes the order of one pass; it owns one
`state.ControllerState` and hands it, with the collaborators each needs, to the parts:
`probing` (readiness, liveness, hangs), `autoscaling` (the desired counts), the pure
`reconciler.plan`, `actions.Actuator` (start, drain, stop, kill; `starts` runs starts as
tasks on the loop, `preparing` asks the backend whether a model is ready and reports its
download), `exits` (what an exit means: restart, backoff,
failure), `adoption` (replicas of a previous server), `publishing` (the routing table),
`draining` (stop a drained replica once it holds no request) and `recall` (the memory of an
endpoint that outlives a controller, kept in the store). None of them imports the loop: the
layers are an import-linter contract (`.importlinter`, `control`).
"""
