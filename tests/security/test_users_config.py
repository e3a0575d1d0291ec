"""Parsing the remote users file and planning the user changes (pure)."""

from __future__ import annotations

import pytest

from apiserver.security.users_config import (
    DesiredUser,
    UserChanges,
    UsersConfigError,
    is_managed_user_name,
    parse_users_config,
    plan_user_changes,
)

GOOD = """
users:
- name: remote-c2
  role: remote
- name: remote-c3
  role: remote
"""


def test_parse_good_file() -> None:
    cfg = parse_users_config(GOOD)
    assert cfg.users == (DesiredUser("remote-c2", "remote"), DesiredUser("remote-c3", "remote"))
    assert cfg.rejected == ()


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty-file"),
    pytest.param("users: []\n", id="empty-list"),
    pytest.param("users:\n", id="null-list"),
])
def test_parse_no_users(text: str) -> None:
    assert parse_users_config(text).users == ()


@pytest.mark.parametrize(("entry", "reason"), [
    pytest.param("{role: remote}", "missing user name", id="no-name"),
    pytest.param("{name: '', role: remote}", "missing user name", id="empty-name"),
    pytest.param("{name: remote-c4, role: admin}", "unknown role 'admin'", id="unknown-role"),
    pytest.param("{name: remote-c4}", "missing role", id="no-role"),
    pytest.param("{name: root, role: remote}", "invalid user name 'root'", id="root"),
    pytest.param("{name: remote, role: remote}", "invalid user name 'remote'", id="shared-remote"),
    pytest.param("{name: admin-c1, role: remote}", "invalid user name", id="admin"),
    pytest.param("{name: local-c1, role: remote}", "invalid user name", id="local"),
    pytest.param("{name: remote-Bad_Name, role: remote}", "invalid user name", id="bad-chars"),
    pytest.param("{name: remote-" + "x" * 33 + ", role: remote}", "invalid user name", id="too-long"),
    pytest.param("{name: 7, role: remote}", "missing user name", id="name-not-string"),
    pytest.param("just-a-string", "not a mapping", id="not-a-mapping"),
])
def test_bad_entries_are_refused_and_the_rest_kept(entry: str, reason: str) -> None:
    text = f"users:\n- {entry}\n- {{name: remote-c2, role: remote}}\n"
    cfg = parse_users_config(text)
    assert cfg.users == (DesiredUser("remote-c2", "remote"),)
    assert len(cfg.rejected) == 1
    assert cfg.rejected[0].index == 0
    assert reason in cfg.rejected[0].reason


def test_duplicates() -> None:
    text = ("users:\n- {name: remote-c2, role: remote}\n- {name: remote-c2, role: remote}\n"
            "- {name: remote-c2, role: local}\n")
    cfg = parse_users_config(text, allowed_roles={"remote", "local"})
    assert cfg.users == (DesiredUser("remote-c2", "remote"),)
    assert [r.index for r in cfg.rejected] == [2]
    assert "duplicate" in cfg.rejected[0].reason


def test_skip_own_cluster() -> None:
    cfg = parse_users_config(GOOD, skip={"remote-c2"})
    assert cfg.users == (DesiredUser("remote-c3", "remote"),)
    assert cfg.rejected == ()


@pytest.mark.parametrize("text", [
    pytest.param("users: [", id="bad-yaml"),
    pytest.param("- a\n- b\n", id="top-level-list"),
    pytest.param("users: {name: x}\n", id="users-not-list"),
])
def test_unusable_file(text: str) -> None:
    with pytest.raises(UsersConfigError):
        parse_users_config(text)


@pytest.mark.parametrize(("name", "managed"), [
    ("remote-c2", True), ("remote-a", True), ("remote", False), ("root", False), ("admin-c1", False),
    ("local-c1", False), ("remote-", False), ("remote--x", False), ("remote-x-", False),
])
def test_is_managed_user_name(name: str, managed: bool) -> None:
    assert is_managed_user_name(name) is managed


def test_plan_changes() -> None:
    desired = [DesiredUser("remote-c2", "remote"), DesiredUser("remote-c3", "remote"),
               DesiredUser("remote-c5", "remote")]
    current = {
        "root": ["root"], "admin-c1": ["root"], "local-c1": ["local"], "remote": ["remote"],
        "remote-c2": ["remote"],  # already right
        "remote-c3": [],  # lost its role
        "remote-c4": ["remote"],  # no longer in the file
        "remote-c5": ["remote", "local"],  # has one role too many
    }
    assert plan_user_changes(desired, current) == UserChanges(
        create=(),
        grant=(DesiredUser("remote-c3", "remote"),),
        revoke=(("remote-c5", "local"),),
        delete=("remote-c4",),
    )


def test_plan_never_touches_builtin_users_even_when_file_is_empty() -> None:
    current = {"root": ["root"], "admin-c1": ["root"], "local-c1": ["local"], "remote": ["remote"]}
    changes = plan_user_changes([], current)
    assert not changes
    assert plan_user_changes([DesiredUser("remote-c9", "remote")], current).create == (
        DesiredUser("remote-c9", "remote"),)
