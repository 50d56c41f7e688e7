"""The llama.cpp backend's slot pool (src/engine/llamacpp_slots.py): lowest free first."""

from src.engine.llamacpp_slots import SlotPool


def test_the_pool_hands_out_the_lowest_free_slot_and_none_when_all_are_held():
    pool = SlotPool(3)
    assert [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()] == [0, 1, 2, None]
    pool.release(2)
    pool.release(0)
    assert pool.free == 2
    assert pool.acquire() == 0 and pool.acquire() == 2 and pool.free == 0
