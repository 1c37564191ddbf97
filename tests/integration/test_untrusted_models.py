"""Through push + deploy on a real `podium up`: a model file that runs code when loaded
never runs in a replica unless the endpoint trusts pickles. Each model writes a marker
file when its code runs (tests/support/malicious.py); with `trust_pickle: true` the
sklearn one does run, which proves the fixture is live in a replica process."""

from __future__ import annotations

import itertools
from pathlib import Path

from podium.core.phases import EndpointStatus
from tests.support import malicious
from tests.support.server import ServerProcess

VIRGINICA = {"inputs": [[6.3, 3.3, 6.0, 2.5]]}
_names = itertools.count()


def unique(name: str) -> str:
    """A fresh name per call: a deleted endpoint's name stays taken until it is gone."""
    return f"{name}-{next(_names)}"


def wait_failed(server: ServerProcess, name: str) -> str:
    """The endpoint's status reason once it failed; an endpoint that runs instead fails
    the test at once."""
    with server.client() as c:
        ep = c.wait_for(name, {EndpointStatus.FAILED, EndpointStatus.RUNNING}, timeout=120)
    assert ep.status is EndpointStatus.FAILED, f"{name} is running: its model was loaded"
    assert ep.status_reason
    return str(ep.status_reason)


def test_untrusted_sklearn_pickle_never_runs_until_trusted(
    server: ServerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    folder = malicious.sklearn_pickle(tmp_path / "evil", marker)
    name = unique("evil-pickle")
    with server.client() as c:
        c.push_model(folder, name)
        c.deploy({"name": name, "model": name})  # framework detected: sklearn
    reason = wait_failed(server, name)
    assert "model.joblib is a pickle, which runs code when loaded" in reason
    assert "trust_pickle: true" in reason
    assert not marker.exists(), "a replica unpickled the untrusted model"

    with server.client() as c:
        c.update(name, {"trust_pickle": True}, wait=True, timeout=120)
        assert marker.read_text() == malicious.PAYLOAD  # trusted: its code ran in the replica
        assert c.invoke(name, VIRGINICA) == [2]
        c.delete(name)


def test_transformers_pickled_weights_and_remote_code_are_refused(
    server: ServerProcess, tmp_path: Path
) -> None:
    weights_marker, code_marker = tmp_path / "weights-marker", tmp_path / "code-marker"
    weights = malicious.torch_weights(tmp_path / "weights", weights_marker)
    code = malicious.remote_code(tmp_path / "code", code_marker)
    evil_weights, evil_code = unique("evil-weights"), unique("evil-code")
    with server.client() as c:
        c.push_model(weights, evil_weights, framework="transformers")
        c.push_model(code, evil_code, framework="transformers")
        c.deploy({"name": evil_weights, "model": evil_weights})
        # Trusting pickles does not make a model's own Python code run.
        c.deploy({"name": evil_code, "model": evil_code, "trust_pickle": True})
    assert "weights are pickles (pytorch_model.bin)" in wait_failed(server, evil_weights)
    reason = wait_failed(server, evil_code)
    assert "needs its own Python code (config.json: modeling_evil.EvilConfig" in reason
    assert not weights_marker.exists(), "a replica unpickled the untrusted weights"
    assert not code_marker.exists(), "a replica imported the model's own code"
    with server.client() as c:
        c.delete(evil_weights)
        c.delete(evil_code)
