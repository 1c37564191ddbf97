"""Build a real Hugging Face hub cache folder offline (the layout huggingface_hub reads)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def add_to_hf_cache(hub_cache: Path, repo_id: str, src: Path, revision: str = "main") -> str:
    """Copy the files of folder `src` into `hub_cache` as a snapshot of model `repo_id`.

    Returns the snapshot's commit hash. `hub_cache` is `$HF_HOME/hub` (or `$HF_HUB_CACHE`).
    """
    files = sorted(p for p in src.rglob("*") if p.is_file())
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.relative_to(src).as_posix().encode())
        digest.update(f.read_bytes())
    commit = digest.hexdigest()
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for f in files:
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        target = snapshot / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path("../" * (len(f.relative_to(src).parts) + 1)) / "blobs" / blob.name)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return commit
