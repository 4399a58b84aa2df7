"""The app-config files the loader and check-config tests read, and a writer for new ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

FILES = Path(__file__).parent / "files"
BASE = str(FILES / "app-config.yaml")
PRODUCTION = str(FILES / "app-config.production.yaml")
#: Six problems, each at a key of its own.
BROKEN = str(FILES / "app-config.broken.yaml")
#: The variables ``BASE`` and ``PRODUCTION`` substitute.
ENV = {"SESSION_SECRET": "s3cret"}

#: One problem at each stage of check-config: a global key (line 1, ``backend.baseUrl``),
#: the registry (line 5, ``githb``) and a provider factory (line 9, ``clientSecret``).
THREE_STAGES = """\
app:
  baseUrl: http://localhost:3000
auth:
  providers:
    githb:
      development:
        clientId: x
    oidc:
      development:
        metadataUrl: http://127.0.0.1:9/.well-known/openid-configuration
        clientId: wsgiauth-demo
"""


def write(directory: Path, name: str, text: str) -> str:
    """Write ``text`` (dedented) to ``directory/name``; its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)
