"""``wsgiauth keys list|rotate|prune`` through the ``wsgiauth`` command, on a SQLite file."""

from __future__ import annotations

import json
import time

import pytest

from wsgiauth.cli import main
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_admin import KeyAdmin
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.keys_command import _duration

HOUR = 3600


@pytest.fixture
def setup(tmp_path):
    """A config naming a SQLite file with one key made 4 hours ago and one just now."""
    path = tmp_path / "auth.sqlite3"
    database = Database.sqlite(path)
    now = time.time()
    SqlKeyStore(database, clock=lambda: now - 4 * HOUR).add_key(
        {"kid": "old-kid", "alg": "ES256", "kty": "EC", "crv": "P-256", "x": "xx", "y": "yy"}
    )
    SqlKeyStore(database, clock=lambda: now).add_key(
        {"kid": "new-kid", "alg": "ES256", "kty": "EC", "crv": "P-256", "x": "xx", "y": "yy"}
    )
    database.close()
    config = tmp_path / "app-config.yaml"
    config.write_text(
        "backend:\n  database:\n    client: better-sqlite3\n"
        f"    connection: {{filename: '{path}'}}\n"
    )
    return str(config)


def test_list_shows_kid_algorithm_age_listing_time_and_the_newest(setup, capsys):
    assert main(["keys", "list", "--config", setup]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KID", "ALG", "CREATED", "AGE", "LISTED", "UNTIL"]
    old, new = lines[1], lines[2]
    assert old.split()[:2] == ["old-kid", "ES256"] and "  4h 0m  " in old
    assert old.endswith("expired")  # 4 h > 3 lifetimes of the default hour
    assert new.startswith("new-kid") and new.endswith("newest")
    assert len(lines) == 3  # no rotation requested yet


def test_list_as_json_has_ids_and_times_and_no_key_material(setup, capsys):
    assert main(["keys", "list", "--config", setup, "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["rotationRequestedAt"] is None
    old, new = listing["keys"]
    assert set(old) == {
        "kid",
        "algorithm",
        "createdAt",
        "ageSeconds",
        "listedUntil",
        "expired",
        "newest",
    }
    assert (old["kid"], old["expired"], old["newest"]) == ("old-kid", True, False)
    assert (new["kid"], new["expired"], new["newest"]) == ("new-kid", False, True)
    assert 4 * HOUR - 60 <= old["ageSeconds"] <= 4 * HOUR + 60
    assert old["createdAt"].endswith("Z") and old["listedUntil"].endswith("Z")


def test_rotate_sets_the_mark_that_list_then_shows(setup, capsys):
    assert main(["keys", "rotate", "--config", setup]) == 0
    assert capsys.readouterr().out.startswith("Rotation requested at ")
    assert main(["keys", "list", "--config", setup]) == 0
    assert "Rotation last requested at " in capsys.readouterr().out
    assert main(["keys", "list", "--config", setup, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rotationRequestedAt"].endswith("Z")


def test_prune_removes_the_expired_key_once(setup, capsys):
    assert main(["keys", "prune", "--config", setup]) == 0
    assert capsys.readouterr().out == "Removed 1 expired key(s): old-kid\n"
    assert main(["keys", "prune", "--config", setup]) == 0
    assert capsys.readouterr().out == "No expired keys.\n"
    assert main(["keys", "list", "--config", setup, "--format", "json"]) == 0
    assert [k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]] == ["new-kid"]


def test_an_empty_store_says_so(tmp_path, capsys):
    path = tmp_path / "auth.sqlite3"
    SqlKeyStore(Database.sqlite(path)).list_keys()
    config = tmp_path / "app-config.yaml"
    config.write_text(
        f"backend:\n  database:\n    client: better-sqlite3\n    connection: '{path}'\n"
    )
    assert main(["keys", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "No keys published.\n"


@pytest.mark.parametrize("provider", ["memory", "static"])
@pytest.mark.parametrize("action", ["list", "rotate", "prune"])
def test_a_store_out_of_reach_exits_2_naming_the_key(tmp_path, capsys, provider, action):
    config = tmp_path / "app-config.yaml"
    config.write_text(f"auth:\n  keyStore:\n    provider: {provider}\n")
    assert main(["keys", action, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wsgiauth: {config}: auth.keyStore.provider: ")


def test_a_database_that_is_down_exits_1_naming_it(setup, capsys, monkeypatch):
    def down(self):
        raise ServiceUnavailableError("The database is unavailable") from OSError("refused")

    monkeypatch.setattr(KeyAdmin, "listing", down)
    assert main(["keys", "list", "--config", setup]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wsgiauth: The database is unavailable (") and err.endswith(
        "auth.sqlite3): refused\n"
    )


def test_keys_needs_an_action_and_a_config(capsys):
    with pytest.raises(SystemExit) as info:
        main(["keys"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["keys", "list"])
    assert "--config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (45.9, "45s"), (725, "12m 5s"), (3 * HOUR + 125, "3h 2m"), (52 * HOUR, "2d 4h")]
    + [(3600, "1h 0m"), (-3, "-3s")],
)
def test_durations_at_a_glance(seconds, shown):
    assert _duration(seconds) == shown
