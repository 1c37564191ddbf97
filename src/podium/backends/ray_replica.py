"""The actor that Ray places for one replica: it runs on the chosen node and owns the
replica's `python -m podium.replica` process there.

Placed with the replica's instance type as Ray resources (`ray_calls.Placement`), so Ray
counts the replica's CPUs, memory and GPUs against the node; the process itself is a child
of the actor. On `start` the actor

1. finds the model on its node: a repository model is fetched from the API's artifact
   endpoint into the node's cache and checked against its digest (`ray_fetch`); an `hf://`
   or `s3://` model is downloaded into the node's cache by the same download child the
   local backend uses (`model_cache.ModelCache`, on this node);
2. binds a listening socket on the node's address (port 0) and hands it to the replica as
   an inherited descriptor, as the local backend does (`launch.replica_command`), so the
   port is known before the replica runs and no other process can take it;
3. starts the replica under a small launcher (`ray_launcher`) that the kernel tells when
   the actor's process dies (`PR_SET_PDEATHSIG`): it then stops the replica gracefully
   (in-flight requests finish), so a killed actor or a lost node leaves no replica that
   nobody manages, and drops no request it was serving.

The replica's environment is the node's (less the server-only variables,
`replica_env.inherited_env`), and its `CUDA_VISIBLE_DEVICES` names exactly the GPUs Ray gave
the actor for its `num_gpus` (`ray.get_gpu_ids()`; none: empty, so a CPU replica never
touches a GPU). Its log and start-status file stay on the node, under
`<root>/<node id>/replicas/<replica id>/`; the backend asks the actor for them (`logs`,
`read_from`, `state`). Every answer is plain data (dicts, lists), never an exception for
an expected failure, so the backend's side needs no Ray exception types.

This module never imports `ray` at import time: the server imports it to name the class.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from podium.artifacts.sources import NodeCache
from podium.backends import logfiles, processes
from podium.backends.base import ModelSource, ReplicaLaunch
from podium.backends.launch import replica_command
from podium.backends.model_cache import ModelCache
from podium.backends.ray_fetch import FetchAccess, fetch_repository_model
from podium.backends.resources import ResourceMeter, Target
from podium.core.errors import PodiumError
from podium.core.settings import DownloadSettings
from podium.core.spec import RepoRef, parse_model_ref

LISTEN_BACKLOG = 2048
HF_POLL_S = 0.5
READ_MAX_BYTES = 256 * 1024  # one `read_from` answer at most


ENV_NODE_DIR = "PODIUM_RAY_NODE_DIR"


def default_root() -> Path:
    """Where a node keeps Podium's caches and replica logs: `PODIUM_RAY_NODE_DIR` in the
    node's own environment (where `ray start` ran), else the node's temporary folder; never
    `PODIUM_HOME` (the server's machine, not this one)."""
    if configured := os.environ.get(ENV_NODE_DIR):
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"podium-ray-{os.getuid()}"


class ReplicaHost:
    """One replica on one Ray node (see the module docstring). Ray calls the methods in up
    to four threads at once (`max_concurrency`), so `state` and `logs` answer while `start`
    fetches a model."""

    def __init__(
        self,
        launch: ReplicaLaunch,
        access: FetchAccess,
        root: str | None = None,
        grace_s: float = 30.0,
    ) -> None:
        import ray  # on the node only

        self._launch = launch
        self._access = access
        self._grace_s = grace_s  # a stop's SIGTERM -> SIGKILL, also when the actor dies
        context = ray.get_runtime_context()
        self._node_id: str = context.get_node_id()
        self._host: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        # The GPUs Ray gave this actor (its `num_gpus`): the replica's and no others ("": none).
        self._gpus = ",".join(str(i) for i in ray.get_gpu_ids())
        self._node_dir = (Path(root) if root else default_root()) / self._node_id[:16]
        self._dir = self._node_dir / "replicas" / launch.replica_id
        self._dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self._dir / "replica.log"
        self.status_path = self._dir / "status.json"
        self._popen: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0
        self._meter: ResourceMeter | None = None
        # The launcher dies with the *thread* that started it (`PR_SET_PDEATHSIG`): one
        # thread that lives as long as the actor starts it, never one of Ray's.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="podium-spawn")

    # ------------------------------------------------------------------ start

    def start(self) -> dict[str, Any]:
        """Fetch the model, start the replica: {"host", "port", "pid", "node", "launched_at"}
        or {"error": why} (the model cannot be had or the process not started)."""
        try:
            model_path = self._model_path(self._launch.model)
        except PodiumError as e:
            return {"error": str(e), "load": True}
        try:
            return self._spawn(model_path)
        except OSError as e:
            return {"error": f"could not start the replica on node {self._node_id[:12]}: {e}"}

    def _model_path(self, model: ModelSource) -> Path:
        ref = parse_model_ref(model.ref)
        cache = self._node_dir / "cache"
        if not isinstance(ref, RepoRef):  # hf:// or s3://: the node's own download child
            return _downloaded_model(cache, model)
        if not model.digest:
            raise PodiumError(f"model {model.ref} has no digest to check", field="model")
        return fetch_repository_model(model.ref, model.digest, self._access, cache)

    def _spawn(self, model_path: Path) -> dict[str, Any]:
        sock = processes.listen_socket(self._host, LISTEN_BACKLOG)
        try:
            port = sock.getsockname()[1]
            argv, env = replica_command(
                self._launch,
                model_path,
                sock.fileno(),
                self.status_path,
                sys.executable,
                visible_devices=self._gpus,
            )
            argv += ["--host", self._host]
            launcher = [
                *(sys.executable, "-m", "podium.backends.ray_launcher"),
                *(str(self._grace_s), str(os.getpid()), str(sock.fileno()), "--", *argv),
            ]
            self.status_path.unlink(missing_ok=True)
            self._launched_at = time.time()
            with self.log_path.open("ab") as log:

                def spawn() -> subprocess.Popen[bytes]:
                    return subprocess.Popen(
                        launcher,
                        pass_fds=(sock.fileno(),),
                        start_new_session=True,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        close_fds=True,
                    )

                popen = self._spawner.submit(spawn).result()
                self._popen = popen
        finally:
            sock.close()
        return {
            "host": self._host,
            "port": port,
            "pid": popen.pid,
            "node": self._node_id,
            "launched_at": self._launched_at,
        }

    # ------------------------------------------------------------------ watch

    def state(self) -> dict[str, Any]:
        """{"alive", "exit_code", "status" (the replica's status file), "launched_at"}."""
        popen = self._popen
        code = None if popen is None else popen.poll()
        if popen is not None and code is not None:
            processes.kill_leftover_group(popen.pid)
        return {
            "alive": popen is not None and code is None,
            "started": popen is not None,
            "exit_code": code,
            "status": processes.read_status(self.status_path),
            "launched_at": self._launched_at,
        }

    def where(self) -> dict[str, str]:
        """The node this replica runs on (for people and tests)."""
        return {"node": self._node_id, "host": self._host}

    def terminate(self) -> None:
        """SIGTERM the launcher, which passes it on once (`ray_launcher`): in-flight
        requests finish; the launcher kills the replica after the grace period."""
        popen = self._popen
        if popen is not None and popen.poll() is None:
            popen.send_signal(signal.SIGTERM)

    def kill_replica(self) -> None:
        """SIGKILL the launcher and the replica (one process group) now."""
        popen = self._popen
        if popen is not None and popen.poll() is None:
            processes.signal_group(popen.pid, signal.SIGKILL)

    def resources(self) -> dict[str, Any] | None:
        """CPU, memory and GPU of the replica's process tree on this node (None: not
        running); a dict of `base.ReplicaResources`' fields."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return None
        if self._meter is None:
            self._meter = ResourceMeter()
        size = self._launch.instance_type
        measured = self._meter.measure({"r": Target(popen.pid, size.cpus, size.gpus)}).get("r")
        if measured is None:
            return None
        return {
            "cpu_percent": measured.cpu_percent,
            "rss_bytes": measured.rss_bytes,
            "gpu_util_percent": measured.gpu_util_percent,
            "gpu_memory_bytes": measured.gpu_memory_bytes,
            "cpus": measured.cpus,
            "gpus": measured.gpus,
        }

    # ------------------------------------------------------------------ logs

    def logs(self, tail: int) -> list[str]:
        return logfiles.tail_lines(self.log_path, max(0, tail))

    def follow_from_tail(self, tail: int | None) -> tuple[list[str], int]:
        """The last `tail` complete lines and the offset after them (None: none, offset 0)."""
        if tail is None:
            return [], 0
        return logfiles.tail(self.log_path, tail, complete=True)

    def read_from(self, offset: int) -> tuple[list[str], int]:
        """The complete lines after `offset` (at most `READ_MAX_BYTES`) and the new offset;
        a log shorter than `offset` was replaced: read from its start."""
        try:
            with self.log_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < offset:
                    offset = 0
                f.seek(offset)
                data = f.read(READ_MAX_BYTES)
        except OSError:
            return [], offset
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) == READ_MAX_BYTES:  # a runaway line: show it in pieces
            cut = len(data)
        lines = data[:cut].decode("utf-8", errors="replace").splitlines()
        return lines, offset + cut


def _downloaded_model(cache: Path, model: ModelSource) -> Path:
    """An `hf://` or `s3://` model in this node's cache: downloaded by the same child
    process the local backend uses (`model_cache.ModelCache`), with the node's own
    environment (`HF_HOME`, `HF_HUB_OFFLINE`, AWS settings) and the endpoint's token or S3
    keys (`ModelSource`); waited for here (the actor's thread, not the controller)."""
    models = ModelCache(NodeCache(cache), DownloadSettings())
    try:
        while True:
            prepared = models.prepare(model)
            if prepared.state.value != "fetching":
                break
            time.sleep(HF_POLL_S)
        return models.path(model)
    finally:
        models.cancel_all()
