"""The backend's memory figure for a replica is its whole process tree's, children included
(what the memory limit is enforced on; see test_memory_children.py for the whole path)."""

from __future__ import annotations

import psutil

from podium.backends import processes
from tests.support.memory_tree import MiB, parent_with_a_hungry_child

HELD_MB = 100


def test_tree_rss_counts_the_children() -> None:
    with parent_with_a_hungry_child(HELD_MB) as tree:
        parent_mib = psutil.Process(tree.parent).memory_info().rss // MiB
        used = processes.tree_rss_mib(tree.parent, processes.children_map())
    assert used is not None
    assert parent_mib < HELD_MB // 2  # the parent itself holds little
    assert used >= parent_mib + HELD_MB
