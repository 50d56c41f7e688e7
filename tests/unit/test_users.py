"""--auth users (src/users.py) and the watched JSON file behind both users and keys."""

from __future__ import annotations

import json
import os
import time

from src.users import UserStore
from src.watched_json import WatchedJson


def _touch_later(path, seconds: float = 5) -> None:
    later = time.time() + seconds
    os.utime(path, (later, later))


def test_closed_access_only_lets_listed_users_in():
    users = UserStore([("alice", "pw")], access="closed")
    assert users.enabled
    assert users.check("alice", "pw")
    assert not users.check("alice", "wrong") and not users.check("bob", "pw") and not users.check("", "")
    assert users.check_pair("alice:pw") and not users.check_pair("alice") and not users.check_pair(None)


def test_open_access_registers_a_new_user_and_then_checks_the_password():
    users = UserStore([("alice", "pw")], access="open")
    assert users.check("bob", "secret")
    assert users.check("bob", "secret") and not users.check("bob", "other")
    assert users.names() == ["alice", "bob"]


def test_no_auth_means_no_login_required():
    assert not UserStore([], access="open").enabled


def test_auth_file_formats_reload_and_registration_are_persisted(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"alice": {"password": "pw"}, "carol": "plain"}))
    users = UserStore(str(path), access="open", reload_seconds=0)
    assert users.check("alice", "pw") and users.check("carol", "plain")
    assert users.check("dave", "new")  # registered and written back
    assert json.loads(path.read_text())["dave"] == {"password": "new"}
    path.write_text(json.dumps({"erin": {"password": "x"}}))
    _touch_later(path)
    assert users.names() == ["erin"]
    closed = UserStore(str(path), access="closed", reload_seconds=0)
    assert not closed.check("zed", "x") and "zed" not in json.loads(path.read_text())


def test_watched_json_reads_on_change_only_and_keeps_the_last_good_content(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("[1]")
    seen: list[object] = []
    watched = WatchedJson(path, seen.append, reload_seconds=3600)
    watched.maybe_reload()
    assert seen == [[1]]  # not re-read within the reload period
    watched.reload_seconds = 0
    watched.maybe_reload()
    assert seen == [[1]]  # unchanged mtime: not re-read
    path.write_text("[2]")
    _touch_later(path)
    watched.maybe_reload()
    path.write_text("{broken")
    _touch_later(path, 10)
    watched.maybe_reload()
    assert seen == [[1], [2]]
