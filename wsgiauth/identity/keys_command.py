"""``wsgiauth keys``: list, rotate and prune the signing keys the serving processes share.

::

    wsgiauth keys list   --config app-config.yaml [--format json]
    wsgiauth keys rotate --config app-config.yaml
    wsgiauth keys prune  --config app-config.yaml

For operators of the ``database`` key store (PostgreSQL across hosts, or the SQLite
file of one host); the work is :class:`~wsgiauth.identity.key_admin.KeyAdmin`'s,
this module only parses and prints. Exit status: 0 done, 1 the key store's database
is unavailable, 2 a config problem, named by its key (a ``memory`` or ``static``
key store among them). Only public keys are in the store, and only their ids are
printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..errors import ServiceUnavailableError
from ..loader import load_config
from .key_admin import KeyAdmin
from .key_admin import KeyListing

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``rotate`` and ``prune`` subcommands to the ``keys`` parser."""
    actions = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("list", "the keys, their age and how long they stay listed", _list),
        ("rotate", "make every serving process switch to a new key, without a restart", _rotate),
        ("prune", "delete the keys past their listing time", _prune),
    ]
    for name, help_text, run in commands:
        command = actions.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--config",
            action="append",
            required=True,
            metavar="FILE",
            help="the servers' app-config file; repeat it, later files win",
        )
        if name == "list":
            command.add_argument("--format", choices=("text", "json"), default="text")
        command.set_defaults(run=run)


def _run(args: argparse.Namespace, action: Callable[[KeyAdmin], int]) -> int:
    # The one line printed below says what failed; the stores' warnings would repeat it.
    logging.basicConfig(level=logging.ERROR, format="wsgiauth: %(message)s")
    try:
        admin = KeyAdmin.from_config(load_config(*args.config))
    except ConfigError as exc:
        print(f"wsgiauth: {exc}", file=sys.stderr)
        return 2
    try:
        return action(admin)
    except ServiceUnavailableError as exc:
        database = getattr(admin.store, "database", None)
        where = f" ({database.description})" if database is not None else ""
        cause = f": {str(exc.__cause__).splitlines()[0]}" if exc.__cause__ is not None else ""
        print(f"wsgiauth: {exc.message}{where}{cause}", file=sys.stderr)
        return 1
    finally:
        admin.close()


def _list(args: argparse.Namespace) -> int:
    def show(admin: KeyAdmin) -> int:
        listing = admin.listing()
        if args.format == "json":
            print(json.dumps(_as_json(listing), indent=2))
        else:
            print(_as_text(listing))
        return 0

    return _run(args, show)


def _rotate(args: argparse.Namespace) -> int:
    def rotate(admin: KeyAdmin) -> int:
        mark = admin.rotate()
        print(
            f"Rotation requested at {_iso(mark)}. Each serving process that signs with an "
            "older key publishes a new one within seconds and signs with it once every "
            "process can have seen it; old keys stay listed until the tokens they signed "
            "expire. Watch it with: wsgiauth keys list"
        )
        return 0

    return _run(args, rotate)


def _prune(args: argparse.Namespace) -> int:
    def prune(admin: KeyAdmin) -> int:
        removed = admin.prune()
        if removed:
            print(f"Removed {len(removed)} expired key(s): {', '.join(removed)}")
        else:
            print("No expired keys.")
        return 0

    return _run(args, prune)


# --- rendering ------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    """``45s``, ``12m 5s``, ``3h 2m``, ``2d 4h``: an age at a glance."""
    sign, left = ("-" if seconds < 0 else ""), int(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if parts or left >= size or unit == "s":
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


def _status(listing: KeyListing, index: int) -> str:
    key = listing.keys[index]
    flags = ["newest"] if key.newest else []
    if key.listed_until <= listing.now:
        flags.append("expired")
    return ", ".join(flags)


def _as_text(listing: KeyListing) -> str:
    header = ("KID", "ALG", "CREATED", "AGE", "LISTED UNTIL", "")
    rows = [header] + [
        (
            key.kid,
            key.algorithm,
            _iso(key.created_at),
            _duration(listing.now - key.created_at),
            _iso(key.listed_until),
            _status(listing, index),
        )
        for index, key in enumerate(listing.keys)
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if not listing.keys:
        lines = ["No keys published."]
    mark = listing.rotation_requested_at
    if mark is not None:
        ago = _duration(listing.now - mark)
        lines.append(f"Rotation last requested at {_iso(mark)} ({ago} ago).")
    return "\n".join(lines)


def _as_json(listing: KeyListing) -> dict[str, Any]:
    mark = listing.rotation_requested_at
    return {
        "now": _iso(listing.now),
        "rotationRequestedAt": None if mark is None else _iso(mark),
        "keys": [
            {
                "kid": key.kid,
                "algorithm": key.algorithm,
                "createdAt": _iso(key.created_at),
                "ageSeconds": round(listing.now - key.created_at),
                "listedUntil": _iso(key.listed_until),
                "expired": key.listed_until <= listing.now,
                "newest": key.newest,
            }
            for key in listing.keys
        ],
    }
