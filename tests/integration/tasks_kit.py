"""What the async task tests share: a python model that echoes, sleeps or raises on
demand, and reading a task straight from the server's queue (`podium.db` in its home)."""

from __future__ import annotations

from pathlib import Path

from podium.store import Database
from podium.store.task_records import AttemptView, TaskView

TASKER = '''\
"""Podium test bundle: echoes its input; {"sleep": s} sleeps first, {"raise": ...} fails,
{"sleep_ms_random": n} sleeps a random 0..n ms."""

import random
import time


class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        if isinstance(inputs, dict):
            if inputs.get("raise"):
                raise RuntimeError("asked to fail")
            if "sleep" in inputs:
                time.sleep(float(inputs["sleep"]))
            if "sleep_ms_random" in inputs:
                time.sleep(random.uniform(0, float(inputs["sleep_ms_random"])) / 1000)
        return {"echo": inputs}
'''


def write_tasker(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model.py").write_text(TASKER, encoding="utf-8")
    return dest


def queue_db(home: Path) -> Database:
    """The server's own database (SQLite in its home), opened beside it."""
    return Database(f"sqlite:///{home}/podium.db")


def task(db: Database, task_id: str) -> TaskView:
    with db.unit_of_work(read_only=True) as uow:
        return uow.tasks.get(task_id)


def attempts(db: Database, task_id: str) -> list[AttemptView]:
    with db.unit_of_work(read_only=True) as uow:
        return uow.tasks.attempts(task_id)
