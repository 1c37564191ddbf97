"""The controller: reconciles desired state (store) with observed replicas (backend).

`reconciler` is a pure function (no I/O, no clock); `loop.Controller` owns the I/O: it reads
the store, polls the backend, probes replicas (`health`), applies the plan, records events
and publishes the routing table the gateway follows.
"""
