"""Coordination between several server processes on one PostgreSQL database (issue 16).

`podium up` is one process on SQLite and needs none of this beyond a lease it always holds.
`podium server --roles …` processes on PostgreSQL share: the controller lease with its
fencing number (`leadership`, `fencing`), the routing table the leader publishes and every
gateway follows through LISTEN/NOTIFY (`routing_pg`), wake requests from any gateway or API
process to the leader (`wake`), and each gateway's load, which the leader sums (`loads`).

Layer: above `store` (it uses the database and its tables), below the processes that use it
(`control`, `server`); the gateway and the API see only the `core` protocols.
"""
