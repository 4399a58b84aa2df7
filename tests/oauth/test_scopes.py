"""Scope splitting and union (spec §3.4)."""

from __future__ import annotations

import pytest

from wsgiauth.oauth.scopes import join_scopes
from wsgiauth.oauth.scopes import split_scopes


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(None, [], id="none"),
        pytest.param("", [], id="empty"),
        pytest.param("openid", ["openid"], id="one"),
        pytest.param("openid email profile", ["openid", "email", "profile"], id="spaces"),
        pytest.param("openid,email|profile", ["openid", "email", "profile"], id="comma-pipe"),
        pytest.param(
            "  openid \t\n email ,, |profile  ", ["openid", "email", "profile"], id="runs"
        ),
        pytest.param("https://x/a.read", ["https://x/a.read"], id="url-scope"),
        pytest.param("a b a", ["a", "b", "a"], id="split-keeps-duplicates"),
    ],
)
def test_split_scopes(scope: str | None, expected: list[str]) -> None:
    assert split_scopes(scope) == expected


def test_join_scopes_is_an_ordered_union() -> None:
    requested = split_scopes("email,openid")
    granted = ["openid", "profile"]
    required = ("openid",)
    additional = ["offline_access", "email"]

    assert join_scopes(requested, granted, required, additional) == (
        "email openid profile offline_access"
    )


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param((), "", id="nothing"),
        pytest.param(([], ()), "", id="empty-groups"),
        pytest.param((["a", "a"],), "a", id="dedup-within-group"),
        pytest.param((iter(["b", "a"]), ["a", "c"]), "b a c", id="iterators"),
    ],
)
def test_join_scopes_edges(groups: tuple[list[str], ...], expected: str) -> None:
    assert join_scopes(*groups) == expected
