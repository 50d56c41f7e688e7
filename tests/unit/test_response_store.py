"""src/storage/responses.py on a real SQLite file: owner scoping, chains, retention, reopening."""

from __future__ import annotations

import time

from src.storage.responses import ResponseStore, StoredResponse


def record(rid: str, owner: str = "a", previous: str | None = None, age_days: float = 0.0) -> StoredResponse:
    return StoredResponse(id=rid, owner=owner, response={"id": rid, "output": []},
                          input_items=[{"type": "message", "role": "user", "content": rid}],
                          previous_response_id=previous, created_at=time.time() - age_days * 86400)


def test_a_response_is_its_owners_only(tmp_path):
    store = ResponseStore.open("", str(tmp_path))
    store.save(record("r1", owner="a"))
    assert store.get("a", "r1").input_items[0]["content"] == "r1"
    assert store.get("b", "r1") is None
    assert store.delete("b", "r1") is False and store.get("a", "r1") is not None
    assert store.delete("a", "r1") is True and store.get("a", "r1") is None


def test_chain_is_oldest_first_and_none_when_a_link_is_missing(tmp_path):
    store = ResponseStore.open("", str(tmp_path))
    store.save(record("r1"))
    store.save(record("r2", previous="r1"))
    store.save(record("r3", previous="r2"))
    assert [r.id for r in store.chain("a", "r3")] == ["r1", "r2", "r3"]
    assert store.chain("b", "r3") is None
    store.delete("a", "r2")
    assert store.chain("a", "r3") is None


def test_a_stored_response_survives_reopening_the_file(tmp_path):
    ResponseStore.open("", str(tmp_path)).save(record("r1"))
    again = ResponseStore.open("", str(tmp_path))
    assert again.get("a", "r1").response == {"id": "r1", "output": []}
    assert (tmp_path / "h2ogpt.sqlite").exists()


def test_retention_removes_old_responses_as_new_ones_are_stored(tmp_path):
    store = ResponseStore.open("", str(tmp_path), retention_days=7)
    store.save(record("old", age_days=8))  # removed by its own save: past retention already
    store.save(record("recent", age_days=6))
    assert store.get("a", "old") is None and store.get("a", "recent") is not None
    assert store.purge(now=time.time() + 2 * 86400) == 1 and store.get("a", "recent") is None
    keep = ResponseStore.open("", str(tmp_path / "keep"), retention_days=0)
    keep.save(record("ancient", age_days=10_000))
    assert keep.get("a", "ancient") is not None
