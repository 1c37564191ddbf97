"""The backend's memory figure for a replica is its whole process tree's, children and
their children included (what the memory limit is enforced on; test_memory_children.py
covers the whole path through a `command` server)."""

from __future__ import annotations

import os

import psutil

from podium.backends import processes
from tests.support.memory_tree import MiB, parent_with_a_hungry_child

HELD_MB = 100
SLACK_MB = 20  # this process's own RSS may move a little between two readings


def test_tree_rss_counts_children_and_grandchildren() -> None:
    own_mib = psutil.Process().memory_info().rss // MiB
    with parent_with_a_hungry_child(HELD_MB) as tree:
        parent_mib = psutil.Process(tree.parent).memory_info().rss // MiB
        kids = processes.children_map()
        from_parent = processes.tree_rss_mib(tree.parent, kids)
        from_here = processes.tree_rss_mib(os.getpid(), kids)  # the memory is a grandchild's
    assert parent_mib < HELD_MB // 2  # the parent itself holds little
    assert from_parent is not None and from_parent >= parent_mib + HELD_MB
    assert from_here is not None and from_here >= own_mib + HELD_MB - SLACK_MB
