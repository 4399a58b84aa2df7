"""Tabs racing one rotating refresh token share one provider exchange, in any worker.

The in-process :class:`~wsgiauth.oauth.single_flight.SingleFlight` comes first,
so the threads of one process that arrive together make one flight; its owner
then goes through the
:class:`~wsgiauth.types.RefreshFlights` the app was built with (the database's),
so the processes and hosts on that database make one exchange. The result
travels between them as JSON. Without shared flights (no database, a custom
embedding), the single flight holds in this process only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from ..errors import ServiceUnavailableError
from .single_flight import SingleFlight
from .types import OAuthAuthenticatorResult
from .types import OAuthSession

if TYPE_CHECKING:
    from ..types import RefreshFlights

__all__ = ["SharedRefresh", "decode_result", "encode_result"]

log = logging.getLogger(__name__)


class SharedRefresh:
    """One provider refresh per refresh token, for one provider in one environment.

    :param flights: shared between processes; ``None``: this process only.
    :param namespace: the provider id and environment, so that their keys never meet.
    """

    def __init__(self, flights: RefreshFlights | None = None, *, namespace: str) -> None:
        self.flights = flights
        self.namespace = namespace
        # With shared flights the database keeps finished results (for the grace), so
        # that a logout in any worker forgets them everywhere; this process keeps none.
        self._local: SingleFlight[OAuthAuthenticatorResult] = (
            SingleFlight() if flights is None else SingleFlight(grace=0.0)
        )

    def run(
        self, refresh_token: str, call: Callable[[], OAuthAuthenticatorResult]
    ) -> OAuthAuthenticatorResult:
        """``call()`` (the exchange), unless another caller with this token did or does it."""
        key = self._key(refresh_token)
        flights = self.flights
        if flights is None:
            return self._local.run(key, call)

        def shared() -> OAuthAuthenticatorResult:
            produced: list[OAuthAuthenticatorResult] = []

            def exchange() -> str:
                produced.append(call())
                return encode_result(produced[0])

            text = flights.run(key, exchange)
            # The exchange's own caller keeps its result as the provider returned it.
            return produced[0] if produced else decode_result(text)

        return self._local.run(key, shared)

    def forget(self, refresh_token: str) -> None:
        """Hand nobody this token's result any more (after logout)."""
        key = self._key(refresh_token)
        self._local.forget(key)
        if self.flights is not None:
            self.flights.forget(key)

    def _key(self, refresh_token: str) -> str:
        return f"{self.namespace}\x00{refresh_token}"


def encode_result(result: OAuthAuthenticatorResult) -> str:
    """JSON of a provider result; a profile value JSON cannot hold becomes its ``str``."""
    document = {"fullProfile": result.full_profile, "session": dataclasses.asdict(result.session)}
    return json.dumps(document, separators=(",", ":"), default=str)


def decode_result(text: str) -> OAuthAuthenticatorResult:
    """The result :func:`encode_result` wrote; 503 for anything else (e.g. another version)."""
    try:
        document: Any = json.loads(text)
        session = OAuthSession(**document["session"])
        profile = document["fullProfile"]
        if not isinstance(profile, dict) or not isinstance(session.access_token, str):
            raise TypeError("not a refresh result")
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        log.warning("Unreadable shared refresh result: %s", exc)
        raise ServiceUnavailableError("The shared refresh result is unreadable") from exc
    return OAuthAuthenticatorResult(full_profile=profile, session=session)
