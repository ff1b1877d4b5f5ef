"""`connector.memory`: what a ready process leaves out of the GC's full collections."""

from __future__ import annotations

import gc
import weakref

from connector.memory import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_startup_objects_are_frozen_and_garbage_made_before_is_freed():
    gc.unfreeze()
    try:
        gone = weakref.ref(Node())  # unreachable cycle, made before the freeze
        kept = Node()
        freeze_startup_objects()
        assert gone() is None  # collected first, not frozen for the process's life
        assert gc.get_freeze_count() > 0
        assert kept.me is kept
    finally:
        gc.unfreeze()
