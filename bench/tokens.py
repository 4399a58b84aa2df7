"""Identity tokens in process: issued and verified per second, against raw PyJWT.

Single thread, no server. Each figure comes with raw PyJWT doing the same job on
the same ES256 key in the same run, and the ratio between them
(ours ÷ PyJWT, so 1.0 means "as fast as PyJWT"):

- **issue**: :meth:`TokenFactory.issue_token` vs ``jwt.encode(payload, private_key,
  algorithm="ES256", headers={"kid": ...})`` with the same claims. Ours signs twice
  per token: the ``uip`` claim is the signature of a second JWS (the "limited user
  token"), as Backstage does. ECDSA signing is most of the cost, so about 0.5 is the
  floor of this ratio, not a defect; PyJWT signing twice is printed as well.
- **verify, cold**: :meth:`IdentityVerifier.verify` on tokens it has never seen
  (N distinct tokens are built first, each verified once) vs ``jwt.decode(token,
  public_key, algorithms=["ES256"], audience="backstage", issuer=...)`` on the same
  tokens.
- **verify, cached**: the same token again and again; the verifier answers from its
  cache of verified tokens (kept until ``exp``), PyJWT verifies the signature each time.

The rounds are interleaved and the median of the per-round ratios is printed.

Run: ``.venv/bin/python bench/tokens.py [--rounds 5] [--seconds 0.4] [--profile issue]``
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import math
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
from _common import calibrate
from _common import fmt_int
from _common import time_loop

from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.verifier import IdentityVerifier
from wsgiauth.types import TokenParams

ISSUER = "http://localhost:7007/api/auth"
AUDIENCE = "backstage"
DURATION = 3600
SUB = "user:default/jane"
ENT = [SUB, "group:default/team-a"]


@dataclass
class Setup:
    """The factory, the verifier and the raw key material they share."""

    factory: TokenFactory
    verifier: IdentityVerifier
    kid: str
    private_key: Any
    public_key: Any
    serial: int = 0

    def params(self) -> TokenParams:
        """Claims for a new token; ``sub`` varies so that no two tokens are alike."""
        self.serial += 1
        sub = f"user:default/bench-{self.serial}"
        return TokenParams(claims={"sub": sub, "ent": [sub, *ENT[1:]]})

    def ours_issue(self) -> str:
        """One token from the factory."""
        return self.factory.issue_token(TokenParams(claims={"sub": SUB, "ent": ENT}))

    def raw_issue(self) -> str:
        """One token from PyJWT, same key and claims as the factory's (without ``uip``)."""
        iat = math.floor(time.time())
        payload: dict[str, Any] = {"iss": ISSUER, "sub": SUB, "ent": ENT, "aud": AUDIENCE}
        payload.update(iat=iat, exp=iat + DURATION)
        return jwt.encode(payload, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def raw_issue_twice(self) -> str:
        """PyJWT doing the factory's work: sign the ``uip`` proof, then the token."""
        iat = math.floor(time.time())
        proof = {"sub": SUB, "iat": iat, "exp": iat + DURATION}
        uip = jwt.encode(proof, self.private_key, algorithm="ES256", headers={"kid": self.kid})
        payload: dict[str, Any] = {"iss": ISSUER, "sub": SUB, "ent": ENT, "aud": AUDIENCE}
        payload.update(iat=iat, exp=iat + DURATION, uip=uip.rsplit(".", 1)[1])
        return jwt.encode(payload, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def raw_verify(self, token: str) -> dict[str, Any]:
        """PyJWT's full check of one token: signature, ``aud``, ``iss``, ``exp``."""
        claims: dict[str, Any] = jwt.decode(
            token, self.public_key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER
        )
        return claims


def make_setup() -> Setup:
    """A factory on a memory key store, a verifier reading its keys, and that key's halves."""
    factory = TokenFactory(ISSUER, MemoryKeyStore(), DURATION)
    verifier = IdentityVerifier(issuer=ISSUER, key_source=factory.list_public_keys)
    first = factory.issue_token(TokenParams(claims={"sub": SUB, "ent": ENT}))
    verifier.verify(first)  # loads the key list, so no figure contains the first fetch
    # The private key is not public API; the benchmark reads it to give PyJWT the same key.
    current = factory._current  # noqa: SLF001
    if current is None:
        raise RuntimeError("the factory made no signing key")
    kid = jwt.get_unverified_header(first)["kid"]
    if current.kid != kid or current.algorithm != "ES256":
        raise RuntimeError(f"unexpected signing key {current.kid} {current.algorithm}")
    setup = Setup(factory, verifier, kid, current.private_key, current.private_key.public_key())
    # PyJWT accepts the factory's tokens: same key, issuer and audience. (The verifier
    # refuses PyJWT's: their header says "typ": "JWT", not a Backstage user token.)
    setup.raw_verify(first)
    setup.raw_verify(setup.raw_issue())
    setup.raw_verify(setup.raw_issue_twice())
    return setup


def time_each(fn: Callable[[str], object], tokens: list[str]) -> float:
    """Nanoseconds per call of ``fn`` over ``tokens``, each once."""
    start = time.perf_counter_ns()
    for token in tokens:
        fn(token)
    return (time.perf_counter_ns() - start) / len(tokens)


def fresh_tokens(setup: Setup, count: int) -> list[str]:
    """``count`` distinct tokens the verifier has never seen (built before any timing)."""
    return [setup.factory.issue_token(setup.params()) for _ in range(count)]


def line(name: str, ours_ns: list[float], raw_ns: list[float], raw_name: str) -> str:
    """``name: N/s (us each); PyJWT: M/s; ratio R`` with the median of per-round ratios."""
    ratio = statistics.median(r / o for o, r in zip(ours_ns, raw_ns, strict=True))
    ours = statistics.median(ours_ns)
    raw = statistics.median(raw_ns)
    return (
        f"{name}: {fmt_int(1e9 / ours)}/s ({ours / 1000:.1f} us each); "
        f"{raw_name}: {fmt_int(1e9 / raw)}/s ({raw / 1000:.1f} us); ratio {ratio:.2f}"
    )


def _verify_next(verifier: IdentityVerifier, tokens: Iterator[str]) -> object:
    return verifier.verify(next(tokens))


def profile(name: str, fn: Callable[[], object], number: int, top: int) -> None:
    """cProfile top entries (own time, then cumulative) of ``number`` calls of ``fn``."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        fn()
    profiler.disable()
    print(f"\n=== cProfile: {name}, {number:,} calls ===")
    for key in ("tottime", "cumulative"):
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(key).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    """Print tokens issued and verified per second, each with its ratio to raw PyJWT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per case per round")
    parser.add_argument(
        "--profile",
        choices=("issue", "cold", "cached"),
        action="append",
        help="also cProfile this case (repeatable)",
    )
    parser.add_argument("--top", type=int, default=15, help="profile entries to print")
    args = parser.parse_args(argv)

    setup = make_setup()
    cached_token = setup.ours_issue()
    setup.verifier.verify(cached_token)

    issue_cases: dict[str, Callable[[], object]] = {
        "ours": setup.ours_issue,
        "raw": setup.raw_issue,
        "raw x2": setup.raw_issue_twice,
    }
    cached_cases: dict[str, Callable[[], object]] = {
        "ours": lambda: setup.verifier.verify(cached_token),
        "raw": lambda: setup.raw_verify(cached_token),
    }
    numbers = {("issue", name): calibrate(fn, args.seconds) for name, fn in issue_cases.items()} | {
        ("cached", name): calibrate(fn, args.seconds) for name, fn in cached_cases.items()
    }
    probe = fresh_tokens(setup, 50)
    cold_ns = time_each(setup.verifier.verify, probe)
    # Once the verifier's cache is full, each new token also evicts the oldest entry:
    # the steady state of a busy service, so it stays in the cold figure.
    cold_count = max(200, int(args.seconds * 1e9 / cold_ns))

    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, fn in issue_cases.items():
            times.setdefault(("issue", name), []).append(time_loop(fn, numbers["issue", name]))
        tokens = fresh_tokens(setup, cold_count)
        times.setdefault(("cold", "ours"), []).append(time_each(setup.verifier.verify, tokens))
        times.setdefault(("cold", "raw"), []).append(time_each(setup.raw_verify, tokens))
        for name, fn in cached_cases.items():
            times.setdefault(("cached", name), []).append(time_loop(fn, numbers["cached", name]))

    print(
        f"python {sys.version.split()[0]}, PyJWT {jwt.__version__}, ES256, single thread, "
        f"median of {args.rounds} rounds; ratio = ours/s / PyJWT/s in the same round"
    )
    print(line("issued (TokenFactory)", times["issue", "ours"], times["issue", "raw"], "PyJWT"))
    ratio2 = statistics.median(
        r / o for o, r in zip(times["issue", "ours"], times["issue", "raw x2"], strict=True)
    )
    print(
        f"  ours signs twice per token (the uip proof), so ~0.5 is the floor of that ratio; "
        f"PyJWT signing twice: {fmt_int(1e9 / statistics.median(times['issue', 'raw x2']))}/s, "
        f"ours / that = {ratio2:.2f}"
    )
    print(
        line(
            f"verified cold (IdentityVerifier, {fmt_int(cold_count)} new tokens per round)",
            times["cold", "ours"],
            times["cold", "raw"],
            "PyJWT decode",
        )
    )
    print(
        line(
            "verified cached (IdentityVerifier, same token)",
            times["cached", "ours"],
            times["cached", "raw"],
            "PyJWT decode",
        )
    )

    for name in args.profile or ():
        if name == "issue":
            fn = setup.ours_issue
            profile("issue_token", fn, calibrate(fn, 1.0), args.top)
        elif name == "cached":
            fn = cached_cases["ours"]
            profile("verify, cached", fn, calibrate(fn, 1.0), args.top)
        else:
            unseen = iter(fresh_tokens(setup, cold_count))
            verify_next = functools.partial(_verify_next, setup.verifier, unseen)
            profile("verify, cold", verify_next, cold_count, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
