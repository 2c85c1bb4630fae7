"""Judging a served certificate, in the suite's process: pure functions over `cryptography`
objects, each returning a small frozen result that says in one line what is wrong (or right).

The chain is verified with `cryptography.x509.verification` (the WebPKI rules: the CA's
signature, validity at the given time, the host in the SAN, key usages); the other checks
single out one aspect each, so a failure names its cause: the controller's fake certificate,
a name missing from the SAN, an expiry inside the margin, a certificate other than the one
the suite made. Times are always passed in, so the results are deterministic.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from netconform.certmint import FAKE_CN, FAKE_O, FAKE_SAN

DEFAULT_MARGIN_DAYS = 14
_ENCOUNTERED = re.compile(r"\s*\(encountered processing <Certificate\(subject=<Name\((.*?)\)>.*$")


@dataclass(frozen=True)
class Finding:
    """The verdict of one check on one certificate."""

    ok: bool
    message: str
    """One line: what was found (`served the controller's fake certificate (...)`)."""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Expiry(Finding):
    """The validity window against a margin."""

    days_left: int = 0
    """Whole days from the check's time to not-after (negative once expired)."""
    not_before: dt.date = dt.date.min
    not_after: dt.date = dt.date.min


def subject_text(cert: x509.Certificate) -> str:
    """`CN=..., O=...` (CN first, as people read it)."""
    fields = [("CN", NameOID.COMMON_NAME), ("O", NameOID.ORGANIZATION_NAME)]
    parts = [
        f"{label}={attr.value!s}"
        for label, oid in fields
        for attr in cert.subject.get_attributes_for_oid(oid)
    ]
    return ", ".join(parts) or cert.subject.rfc4514_string() or "(empty subject)"


def common_name(name: x509.Name) -> str:
    """The CN of a name, else the whole name."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint, colon-separated upper-case hex (as `openssl x509` prints)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def dns_names(cert: x509.Certificate) -> list[str]:
    """The SAN's DNS names and IP addresses (empty without a SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = san.get_values_for_type(x509.DNSName)
    return names + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact (case-insensitive), or a `*` as the whole left-most label
    standing for exactly one label (`*.example.com` names `a.example.com`, not `example.com`)."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == host
    label, dot, rest = host.partition(".")
    return bool(label and dot) and rest == pattern[2:]


def check_san(cert: x509.Certificate, host: str) -> Finding:
    """Does the SAN name `host`? (The CN is not looked at, as browsers do not.)"""
    names = dns_names(cert)
    try:
        address = ipaddress.ip_address(host)
        hit = any(_same_ip(n, address) for n in names)
    except ValueError:
        hit = any(name_matches(n, host) for n in names)
    shown = ", ".join(names) if names else "none"
    if hit:
        return Finding(True, f"SAN names {host} ({shown})")
    return Finding(False, f"SAN ({shown}) does not name {host}")


def _same_ip(name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == address
    except ValueError:
        return False


def verify_chain(
    leaf: x509.Certificate,
    ca: x509.Certificate,
    host: str,
    at: dt.datetime,
    intermediates: Sequence[x509.Certificate] = (),
) -> Finding:
    """WebPKI verification of `leaf` for `host` at time `at`, trusting only `ca`."""
    ca_name = common_name(ca.subject)
    subject: x509.verification.Subject
    try:
        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    builder = PolicyBuilder().store(Store([ca])).time(at)
    try:
        builder.build_server_verifier(subject).verify(leaf, list(intermediates))
    except VerificationError as exc:
        return Finding(False, f'chain does not verify to CA "{ca_name}": {_reason(exc)}')
    return Finding(True, f"verified by {ca_name}")


def _reason(exc: VerificationError) -> str:
    """The verifier's complaint, with its certificate repr turned into the subject."""
    text = str(exc).removeprefix("validation failed: ")
    return _ENCOUNTERED.sub(lambda m: f" (at {m.group(1)})", text)


def check_expiry(
    cert: x509.Certificate, at: dt.datetime, margin_days: int = DEFAULT_MARGIN_DAYS, host: str = ""
) -> Expiry:
    """Valid at `at`, and for at least `margin_days` more days."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    day = dt.timedelta(days=1)
    left = (end - at) // day
    what = f"certificate for {host or common_name(cert.subject)}"
    if at < start:
        wait = _days((start - at) // day)
        ok, message = False, f"{what} is not valid before {start.date()} (in {wait})"
    elif at >= end:
        ok, message = False, f"{what} expired {end.date()} ({_days((at - end) // day)} ago)"
    else:
        ok = left >= margin_days
        verb = "valid until" if ok else "expires"
        message = f"{what} {verb} {end.date()} ({_days(left)}), margin {_days(margin_days)}"
    return Expiry(ok, message, left, start.date(), end.date())


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def is_fake(cert: x509.Certificate) -> bool:
    """ingress-nginx's built-in certificate: its CN, or its O with only its SAN."""
    cn = common_name(cert.subject)
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return cn == FAKE_CN or (FAKE_O in orgs and dns_names(cert) == [FAKE_SAN])


def check_not_fake(cert: x509.Certificate, sni: str) -> Finding:
    """The controller served a Secret's certificate, not its fake one."""
    if is_fake(cert):
        return Finding(
            False,
            f"served the controller's fake certificate ({subject_text(cert)}): "
            f"no TLS Secret matched SNI {sni}",
        )
    return Finding(True, f"served {subject_text(cert)}, not the controller's fake certificate")


def check_same(cert: x509.Certificate, expected: x509.Certificate) -> Finding:
    """The served certificate is `expected` (same SHA-256 fingerprint)."""
    served, wanted = fingerprint(cert), fingerprint(expected)
    if served == wanted:
        return Finding(True, f"served the expected certificate (sha256 {served[:23]})")
    return Finding(
        False,
        f"served sha256 {served[:23]} ({subject_text(cert)}), "
        f"not the expected sha256 {wanted[:23]} ({subject_text(expected)})",
    )


def check_served(cert: x509.Certificate, sni: str, expected: x509.Certificate | None) -> Finding:
    """Not the fake certificate, and `expected` when one is given (the fake is named first)."""
    fake = check_not_fake(cert, sni)
    if not fake.ok or expected is None:
        return fake
    return check_same(cert, expected)
