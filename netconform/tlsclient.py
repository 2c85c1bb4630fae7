"""A TLS client for the runner: one default handshake (the served certificate, the negotiated
version and cipher) and one handshake pinned to each protocol version asked, with the
standard library's `ssl`; one JSON document on stdout.

    python -m netconform.tlsclient ADDRESS PORT SNI [--versions TLSv1,TLSv1.1] [--timeout S]

Nothing is verified here (CERT_NONE): the suite's process judges the certificate against its
own CA (`netconform.certcheck`). Each attempt's `result` names what happened: `accepted`, a
TLS `alert` from the server (its reason in `alert`), `closed` or `reset` by the server during
the handshake, `tls-error` (a local failure, its reason in `reason`), `refused`, `timeout`
(`phase` says connect or handshake), `unreachable`, `os-error`, and `cannot-offer` when this
machine's OpenSSL cannot make that handshake at all (nothing is sent then).

Offering TLS 1.0 and 1.1 from OpenSSL 3: pinned attempts use `DEFAULT:@SECLEVEL=0` (at
security level 1 and up OpenSSL 3 refuses the SHA-1 based signatures these versions need, and
Python's own cipher list leaves out their SHA-1 suites), and set the minimum and maximum
version on the context, overriding any `MinProtocol` of the system's openssl.cnf. Whether
this machine can offer a version is proven by a handshake with itself in memory, so a refusal
by the server is never mistaken for a client that could not ask.

The exit code is 0 whenever the JSON was printed (failures are in it); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import re
import socket
import ssl
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
"""The versions a handshake can be pinned to, by the names `SSLSocket.version()` returns."""
PINNED_CIPHERS = "DEFAULT:@SECLEVEL=0"
"""TLS 1.2-and-older cipher list of pinned attempts: any suite the server may pick."""
FORMAT = 1
"""The version of the JSON document."""

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}
_SSL_TAIL = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_SELF = "self.tlsclient.invalid"

Attempt = dict[str, Any]


def client_context(version: str | None = None) -> ssl.SSLContext:
    """A client context that verifies nothing; pinned to `version` when one is given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        _pin(ctx, version)
    return ctx


def _pin(ctx: ssl.SSLContext, version: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "TLSv1 is deprecated"
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[version]
    ctx.set_ciphers(PINNED_CIPHERS)


def offer_problems(versions: Sequence[str]) -> dict[str, str]:
    """Per version, why this machine cannot make a handshake pinned to it ("" when it can):
    a client and a server, both this process's OpenSSL, shake hands in memory."""
    problems = {v: f"unknown TLS version {v!r}" for v in versions if v not in VERSIONS}
    known = [v for v in versions if v in VERSIONS]
    if not known:
        return problems
    with _self_certificate() as (cert, key):
        for version in known:
            problems[version] = _self_handshake(version, cert, key)
    return problems


@contextlib.contextmanager
def _self_certificate() -> Iterator[tuple[str, str]]:
    from netconform.certmint import make_self_signed  # only for the self-test

    minted = make_self_signed([_SELF])
    with tempfile.TemporaryDirectory(prefix="netconform-tlsclient-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(minted.cert_pem)
        key.write_bytes(minted.key_pem)
        yield str(cert), str(key)


def _self_handshake(version: str, cert: str, key: str) -> str:
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        _pin(server_ctx, version)
        client = client_context(version).wrap_bio(to_client, to_server, server_hostname=_SELF)
        server = server_ctx.wrap_bio(to_server, to_client, server_side=True)
    except (ssl.SSLError, ValueError) as exc:
        return f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {version}: {exc}"
    pending = [client, server]
    for _ in range(10):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLError as exc:
                reason = exc.reason or _clean(exc)
                return (
                    f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot make a {version} "
                    f"handshake even with itself: {reason}"
                )
        if not pending:
            return ""
    return f"the in-memory {version} handshake did not finish"


def attempt(address: str, port: int, sni: str, version: str | None, timeout: float) -> Attempt:
    """One handshake (pinned to `version`, or the default one), and what came of it."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return _socket_failure(exc, "connect")
    with sock:
        try:
            with client_context(version).wrap_socket(sock, server_hostname=sni or None) as tls:
                return _accepted(tls, with_certificate=version is None)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            message = f"the server closed the connection: {_clean(exc)}"
            return _failed("closed", "handshake", message)
        except ssl.SSLError as exc:
            reason = exc.reason or ""
            if "_ALERT_" in reason:
                return {**_failed("alert", "handshake", _clean(exc)), "alert": reason}
            return {**_failed("tls-error", "handshake", _clean(exc)), "reason": reason}
        except OSError as exc:
            return _socket_failure(exc, "handshake")


def _accepted(tls: ssl.SSLSocket, with_certificate: bool) -> Attempt:
    cipher = tls.cipher()
    found: Attempt = {
        "result": "accepted",
        "version": tls.version() or "",
        "cipher": cipher[0] if cipher else "",
    }
    der = tls.getpeercert(binary_form=True)
    if with_certificate:
        found["certificate"] = ssl.DER_cert_to_PEM_cert(der) if der else ""
    return found


def _socket_failure(exc: OSError, phase: str) -> Attempt:
    if isinstance(exc, ConnectionRefusedError):
        return _failed("refused", phase, "connection refused")
    if isinstance(exc, TimeoutError):
        return _failed("timeout", phase, f"{phase} timed out")
    if isinstance(exc, ConnectionResetError):
        return _failed("reset", phase, "connection reset by the server")
    if exc.errno in _UNREACHABLE:
        return _failed("unreachable", phase, exc.strerror or str(exc))
    return _failed("os-error", phase, f"{type(exc).__name__}: {exc}")


def _failed(result: str, phase: str, message: str) -> Attempt:
    return {"result": result, "phase": phase, "message": message}


def _clean(exc: ssl.SSLError) -> str:
    """`[SSL: X] what (_ssl.c:1006)` without the source location."""
    return _SSL_TAIL.sub("", str(exc.strerror or exc))


def probe(address: str, port: int, sni: str, versions: Sequence[str], timeout: float) -> Attempt:
    """The whole document: a default handshake and one per version, run concurrently."""
    started = dt.datetime.now(dt.UTC)
    problems = offer_problems(versions)
    offerable = [v for v in versions if not problems[v]]
    with ThreadPoolExecutor(max_workers=1 + len(offerable)) as pool:
        default = pool.submit(attempt, address, port, sni, None, timeout)
        pinned = {v: pool.submit(attempt, address, port, sni, v, timeout) for v in offerable}
        results = {v: pinned[v].result() if v in pinned else None for v in versions}
        document: Attempt = {
            "tlsclient": FORMAT,
            "address": address,
            "port": port,
            "sni": sni,
            "time": started.isoformat(timespec="seconds"),
            "openssl": ssl.OPENSSL_VERSION,
            "default": default.result(),
            "versions": {
                v: r if r is not None else _failed("cannot-offer", "client", problems[v])
                for v, r in results.items()
            },
        }
    return document


def _versions(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    unknown = [v for v in names if v not in VERSIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown version(s) {', '.join(unknown)} (known: {', '.join(VERSIONS)})"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netconform.tlsclient", description=__doc__)
    parser.add_argument("address", help="the address to connect to")
    parser.add_argument("port", type=int)
    parser.add_argument("sni", help="the server name sent (SNI); an IP address sends none")
    parser.add_argument(
        "--versions",
        type=_versions,
        default=[],
        help=f"comma-separated, of {','.join(VERSIONS)} (default: only the default handshake)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step")
    args = parser.parse_args(argv)
    try:
        document = probe(args.address, args.port, args.sni, args.versions, args.timeout)
    except Exception as exc:  # never a traceback: the failure goes in the document
        document = {"tlsclient": FORMAT, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(document, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
