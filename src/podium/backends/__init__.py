"""Where replicas run. `local`: OS processes on this machine (default); `ray` later.

`base` is the seam (the async `Backend`, `ReplicaLogs`, `ModelSource` and `Preparation`,
the launch and observation records): what the controller and the API know of a backend.
Inside, from top to bottom (the `backends` contract in `.importlinter`): `local` (the local
backend) uses `adopted` (a previous server's replica, identified), which uses `managed`
(one watched process), `external` (servers that are not Podium replicas), `local_logs`
(its replica logs), `launch` (a replica's command line) and `model_cache` (a model's files
on this node: the store's folder checked against its digest, `hf://` downloads); below
them `zygote_pool`, then `processes` and `logfiles` (OS helpers), then `base`.
"""
