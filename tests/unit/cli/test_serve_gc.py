"""``pets serve`` and ``pets node`` tune the cycle collector before running
(pets.runtime.gctuning)."""

from __future__ import annotations

import gc

from pets.runtime.gctuning import GC_YOUNG_THRESHOLD, tune_gc


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0  # what was loaded is out of every generation
        young, middle, oldest = gc.get_threshold()
        assert young == GC_YOUNG_THRESHOLD > before[0]
        assert (middle, oldest) == before[1:]
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle: still collected, only less often
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
