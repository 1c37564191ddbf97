"""Where replicas run. `local`: OS processes on this machine (default); `ray` later.

`base` is the seam (`Backend`, `ReplicaLogs`, the launch and observation records): what
the controller and the API know of a backend. Inside, from top to bottom (the
`backends` contract in `.importlinter`): `local` (the local backend) uses `managed` (one
watched process), `external` (servers that are not Podium replicas), `local_logs` (its
replica logs) and `launch` (a replica's command line); below them `zygote_pool`, then
`processes` and `logfiles` (OS helpers), then `base`.
"""
