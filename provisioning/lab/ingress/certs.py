"""Certificates of the lab's ingress controller: from `kubernetes.io/tls` Secrets, the
controller's self-signed default ("fake") certificate, and the certificates faults serve.

As ingress-nginx does (internal/ingress/controller/controller.go `createServers`,
internal/net/ssl/ssl.go): a Secret's `tls.crt`/`tls.key` must parse and belong together, a
certificate is used for a host only when its SAN (or, failing that, its CN) names the host,
and everything else gets the default certificate: CN "Kubernetes Ingress Controller Fake
Certificate", O "Acme Co", SAN ingress.local, RSA-2048, valid 365 days
(internal/net/ssl/ssl.go `GetFakeSSLCert`). An expired certificate is still served.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from netconform.errors import LabError

FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"
FAKE_ORG = "Acme Co"
FAKE_SAN = "ingress.local"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateError(LabError):
    """A TLS Secret that cannot be served (the message names what is wrong)."""


@dataclass(frozen=True)
class Cert:
    """A certificate and key the controller can serve."""

    cert_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]
    """DNS names of the SAN, or the CN when there are none."""
    not_after: datetime.datetime
    source: str
    """`namespace/secret`, `default` (the fake certificate) or a fault's name."""

    @property
    def id(self) -> str:
        """A stable file name for this certificate."""
        return hashlib.sha256(self.cert_pem).hexdigest()[:16]

    def matches(self, host: str) -> bool:
        """Whether the certificate is valid for `host` (a `*.` name covers one label)."""
        host = host.lower().rstrip(".")
        for name in self.names:
            name = name.lower().rstrip(".")
            if name == host:
                return True
            if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
                return True
        return False


def load_tls_secret(secret: dict[str, Any]) -> Cert:
    """The certificate of a Secret (`kubernetes.io/tls` or any with tls.crt and tls.key)."""
    meta = secret["metadata"]
    where = f"Secret {meta.get('namespace', '')}/{meta['name']}"
    data = secret.get("data") or {}
    missing = [k for k in ("tls.crt", "tls.key") if not data.get(k)]
    if missing:
        raise CertificateError(f"{where} has no {' or '.join(missing)}")
    try:
        cert_pem = base64.b64decode(data["tls.crt"], validate=True)
        key_pem = base64.b64decode(data["tls.key"], validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(f"{where}: tls.crt or tls.key is not base64") from None
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as err:
        raise CertificateError(f"{where}: tls.crt is not a PEM certificate ({err})") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        raise CertificateError(f"{where}: tls.key is not a PEM private key ({err})") from None
    if key.public_key().public_bytes(*_SPKI) != cert.public_key().public_bytes(*_SPKI):
        raise CertificateError(f"{where}: tls.key does not belong to the certificate in tls.crt")
    return Cert(cert_pem, key_pem, names_of(cert), cert.not_valid_after_utc, where[7:])


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def names_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The SAN's DNS names, else the subject CN (ingress-nginx's verifyHostname fallback)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(str(n) for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if names:
        return names
    return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def self_signed(
    subject: x509.Name,
    names: tuple[str, ...],
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    source: str,
    key: PrivateKey | None = None,
) -> Cert:
    """A self-signed certificate for `names` (a fresh EC key unless one is given)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Cert(
        cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
        names,
        cert.not_valid_after_utc,
        source,
    )


def fake_certificate(now: datetime.datetime | None = None) -> Cert:
    """The controller's default certificate, as ingress-nginx generates it at start."""
    now = now or datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, FAKE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, FAKE_CN),
        ]
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return self_signed(
        subject, (FAKE_SAN,), now, now + datetime.timedelta(days=365), "default", key
    )


def expired_like(cert: Cert, now: datetime.datetime | None = None) -> Cert:
    """A certificate with `cert`'s subject and names that expired a day ago (a fault: a
    renewal that never happened). Self-signed: the lab has no CA key of the user's."""
    now = now or datetime.datetime.now(datetime.UTC)
    subject = x509.load_pem_x509_certificates(cert.cert_pem)[0].subject
    return self_signed(
        subject,
        cert.names,
        now - datetime.timedelta(days=91),
        now - datetime.timedelta(days=1),
        "fault expired-cert",
    )


def for_other_host(host: str, now: datetime.datetime | None = None) -> Cert:
    """A certificate for a host other than `host` (a fault, when the cluster serves no
    certificate of another host to mix up)."""
    now = now or datetime.datetime.now(datetime.UTC)
    other = f"not-{host}" if not host.startswith("*.") else f"not-{host[2:]}"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, other)])
    return self_signed(
        subject,
        (other,),
        now - datetime.timedelta(hours=1),
        now + datetime.timedelta(days=90),
        "fault wrong-cert",
    )
