"""``wsgiauth fake-idp`` as a real process, and its refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.fake_idp.conftest import CATALOG
from wsgiauth.cli import main
from wsgiauth.fake_idp import command

TIMEOUT = 10
REDIRECT = "http://127.0.0.1:7007/api/auth/oidc/handler/frame"


def test_the_command_serves_and_warns(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgiauth.cli", "fake-idp", "--port", "0", "--users", str(CATALOG),
         "--client-secret", "s", "--redirect-uri", REDIRECT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        banner = proc.stdout.readline()
        assert banner.startswith("wsgiauth fake-idp serving on http://127.0.0.1:"), banner
        issuer = banner.split()[-1]
        document = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        assert document.json()["issuer"] == issuer
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    assert "for development and tests ONLY" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--redirect-uri", REDIRECT], "--users", id="no-users"),
        pytest.param(["--users", str(CATALOG)], "--redirect-uri", id="no-client"),
        pytest.param(
            ["--users", str(CATALOG), "--redirect-uri", REDIRECT, "--host", "0.0.0.0"],  # noqa: S104
            "not loopback",
            id="remote",
        ),
        pytest.param(
            ["--users", str(CATALOG), "--redirect-uri", "/relative"], "absolute", id="relative"
        ),
        pytest.param(
            ["--users", str(CATALOG), "--redirect-uri", REDIRECT, "--auto-consent", "nobody"],
            "not one of the users",
            id="auto-consent",
        ),
        pytest.param(["--users", "/nonexistent.yaml", "--redirect-uri", REDIRECT], "No such",
                     id="missing-catalog"),
        pytest.param(
            ["--users", str(CATALOG), "--clients", "c.yaml", "--redirect-uri", REDIRECT],
            "not both",
            id="clients-and-flags",
        ),
    ],
)  # fmt: skip
def test_refusals(capsys, monkeypatch, args, message):
    if "--host" in args:  # were the check gone, the server would start: fail at once instead
        monkeypatch.setattr(command, "FakeIdpServer", _must_not_serve)
    assert main(["fake-idp", "--port", "0", *args]) == 2
    assert message in capsys.readouterr().err


def _must_not_serve(*args, **kwargs):
    raise AssertionError("the server was started")


def test_auto_consent_alone_makes_its_user(tmp_path):
    from wsgiauth.cli import _parser
    from wsgiauth.fake_idp.command import _registry

    args = _parser().parse_args(
        ["fake-idp", "--auto-consent", "user:default/jane", "--redirect-uri", REDIRECT]
    )
    users, clients = _registry(args)
    assert [user.ref for user in users] == ["user:default/jane"]
    assert clients[0].client_id == "wsgiauth-dev"
    assert clients[0].client_secret is None
