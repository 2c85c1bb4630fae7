"""The tls suite's own certificates: a CA, host certificates it signs, the ingress-nginx fake
certificate's look-alike, and the `kubernetes.io/tls` Secret that carries one.

Keys are EC P-256 by default: a key is made in well under a millisecond (RSA-2048 takes tens
of milliseconds, and the tests mint dozens), certificates and Secrets stay small, and every
TLS version from 1.0 to 1.3 has ECDHE-ECDSA cipher suites, so nginx and Python's `ssl` serve
them at any version. `key="rsa"` gives RSA-2048, as ingress-nginx's own fake certificate is.

Validity is explicit (`valid_from`, `valid_for`), so a test can mint a certificate that has
already expired, is not valid yet, or expires in a few days.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEFAULT_CA_NAME = "netconform test CA"
FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"
"""The subject CN of ingress-nginx's built-in certificate (served when no Secret matches)."""
FAKE_O = "Acme Co"
FAKE_SAN = "ingress.local"


@dataclass(frozen=True)
class Minted:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM (what nginx and a TLS Secret take)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_key(key: KeyType = "ec") -> PrivateKey:
    """A fresh EC P-256 or RSA-2048 key."""
    if key == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _window(
    valid_from: dt.datetime | None, valid_for: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return start, start + valid_for


def make_ca(
    name: str = DEFAULT_CA_NAME,
    *,
    key: KeyType = "ec",
    valid_from: dt.datetime | None = None,
    valid_for: dt.timedelta = dt.timedelta(days=365),
) -> Minted:
    """A self-signed CA that may sign host certificates (not intermediates)."""
    private = new_key(key)
    start, end = _window(valid_from, valid_for)
    public = private.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(private, hashes.SHA256())
    )
    return Minted(cert, private)


def make_host_cert(
    ca: Minted,
    hosts: Sequence[str],
    *,
    key: KeyType = "ec",
    valid_from: dt.datetime | None = None,
    valid_for: dt.timedelta = dt.timedelta(days=90),
    common_name: str = "",
) -> Minted:
    """A server certificate for `hosts` (DNS names in the SAN), signed by `ca`."""
    if not hosts:
        raise ValueError("a host certificate needs at least one host name")
    private = new_key(key)
    start, end = _window(valid_from, valid_for)
    ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())
    cert = (
        _leaf(private, _name(common_name or hosts[0]), hosts, start, end)
        .issuer_name(ca.cert.subject)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Minted(cert, private)


def make_self_signed(
    hosts: Sequence[str],
    *,
    common_name: str = "",
    organization: str = "",
    key: KeyType = "ec",
    valid_from: dt.datetime | None = None,
    valid_for: dt.timedelta = dt.timedelta(days=90),
) -> Minted:
    """A server certificate that is its own issuer (no CA)."""
    private = new_key(key)
    start, end = _window(valid_from, valid_for)
    name = _name(common_name or hosts[0], organization)
    cert = _leaf(private, name, hosts, start, end).issuer_name(name).sign(private, hashes.SHA256())
    return Minted(cert, private)


def make_fake_certificate(valid_from: dt.datetime | None = None) -> Minted:
    """A look-alike of ingress-nginx's fake certificate: CN "Kubernetes Ingress Controller Fake
    Certificate", O "Acme Co", SAN ingress.local, RSA-2048, self-signed, 365 days."""
    return make_self_signed(
        [FAKE_SAN],
        common_name=FAKE_CN,
        organization=FAKE_O,
        key="rsa",
        valid_from=valid_from,
        valid_for=dt.timedelta(days=365),
    )


def _leaf(
    private: PrivateKey,
    subject: x509.Name,
    hosts: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
) -> x509.CertificateBuilder:
    public = private.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(encipher=isinstance(private, rsa.RSAPrivateKey)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _usage(*, cert_sign: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def tls_secret(
    name: str, namespace: str, leaf: Minted, chain: Sequence[x509.Certificate] = ()
) -> dict[str, Any]:
    """The `kubernetes.io/tls` Secret manifest for `leaf` (tls.crt: the leaf, then `chain`)."""
    pem = leaf.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(pem).decode("ascii"),
            "tls.key": base64.b64encode(leaf.key_pem).decode("ascii"),
        },
    }
