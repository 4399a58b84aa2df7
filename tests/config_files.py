"""The app-config files the loader and check-config tests read, and a writer for new ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

FILES = Path(__file__).parent / "files"
BASE = str(FILES / "app-config.yaml")
PRODUCTION = str(FILES / "app-config.production.yaml")
#: The variables ``BASE`` and ``PRODUCTION`` substitute.
ENV = {"SESSION_SECRET": "s3cret"}


def write(directory: Path, name: str, text: str) -> str:
    """Write ``text`` (dedented) to ``directory/name``; its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)
