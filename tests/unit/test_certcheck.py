"""certcheck on certificates certmint makes: good, expired, expiring, not yet valid, wrong SAN,
wrong CA, self-signed and the ingress-nginx fake; every check judged at one fixed time."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from netconform import certcheck, certmint

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
HOST = "secure.example"
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> certmint.Minted:
    return certmint.make_ca(valid_from=NOW - 30 * DAY, valid_for=dt.timedelta(days=3650))


def host_cert(
    ca: certmint.Minted, start: dt.datetime, days: float, hosts: tuple[str, ...] = (HOST,)
) -> x509.Certificate:
    minted = certmint.make_host_cert(ca, hosts, valid_from=start, valid_for=days * DAY)
    return minted.cert


def test_a_good_certificate_passes_every_check(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW - DAY, 90)
    assert certcheck.verify_chain(leaf, ca.cert, HOST, NOW) == certcheck.Finding(
        True, "verified by netconform test CA"
    )
    assert certcheck.check_san(leaf, HOST).ok
    expiry = certcheck.check_expiry(leaf, NOW, host=HOST)
    assert expiry.ok and expiry.days_left == 89
    assert expiry.message == (
        "certificate for secure.example valid until 2027-03-01 (89 days), margin 14 days"
    )
    assert (expiry.not_before, expiry.not_after) == (dt.date(2026, 12, 1), dt.date(2027, 3, 1))
    assert certcheck.check_not_fake(leaf, HOST).ok
    assert certcheck.check_served(leaf, HOST, leaf).ok


def test_expiring_inside_the_margin_names_the_date_and_the_days(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW - DAY, 9)  # not after: NOW + 8 days
    expiry = certcheck.check_expiry(leaf, NOW, 14, HOST)
    assert not expiry.ok and expiry.days_left == 8
    assert (
        str(expiry) == "certificate for secure.example expires 2026-12-10 (8 days), margin 14 days"
    )
    assert certcheck.check_expiry(leaf, NOW, 8, HOST).ok  # 8 days left, margin 8: enough
    assert not certcheck.check_expiry(leaf, NOW, 9, HOST).ok
    # still trusted: the margin is the suite's rule, not the verifier's
    assert certcheck.verify_chain(leaf, ca.cert, HOST, NOW).ok


def test_expired(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW - 100 * DAY, 90)  # ended 10 days ago
    expiry = certcheck.check_expiry(leaf, NOW, host=HOST)
    assert not expiry.ok and expiry.days_left == -10
    assert expiry.message == "certificate for secure.example expired 2026-11-22 (10 days ago)"
    chain = certcheck.verify_chain(leaf, ca.cert, HOST, NOW)
    assert not chain.ok
    assert chain.message == (
        'chain does not verify to CA "netconform test CA": '
        "cert is not valid at validation time (at CN=secure.example)"
    )


def test_not_yet_valid(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW + 5 * DAY, 90)
    expiry = certcheck.check_expiry(leaf, NOW, host=HOST)
    assert not expiry.ok
    assert (
        expiry.message
        == "certificate for secure.example is not valid before 2026-12-07 (in 5 days)"
    )
    assert not certcheck.verify_chain(leaf, ca.cert, HOST, NOW).ok
    assert certcheck.verify_chain(leaf, ca.cert, HOST, NOW + 6 * DAY).ok  # the time is honoured


def test_wrong_san(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW - DAY, 90, ("shop.example", "www.shop.example"))
    san = certcheck.check_san(leaf, HOST)
    assert san == certcheck.Finding(
        False, "SAN (shop.example, www.shop.example) does not name secure.example"
    )
    chain = certcheck.verify_chain(leaf, ca.cert, HOST, NOW)
    assert not chain.ok and "no matching subjectAltName" in chain.message
    assert certcheck.verify_chain(leaf, ca.cert, "www.shop.example", NOW).ok


def test_san_wildcards_stand_for_exactly_one_label(ca: certmint.Minted) -> None:
    leaf = host_cert(ca, NOW - DAY, 90, ("*.example.com",))
    assert certcheck.check_san(leaf, "a.example.com").ok
    assert certcheck.check_san(leaf, "A.Example.COM.").ok
    assert not certcheck.check_san(leaf, "example.com").ok
    assert not certcheck.check_san(leaf, "a.b.example.com").ok
    assert certcheck.verify_chain(leaf, ca.cert, "a.example.com", NOW).ok


def test_wrong_ca(ca: certmint.Minted) -> None:
    other = certmint.make_ca("other CA", valid_from=NOW - DAY)
    leaf = host_cert(other, NOW - DAY, 90)
    chain = certcheck.verify_chain(leaf, ca.cert, HOST, NOW)
    assert not chain.ok
    assert chain.message.startswith('chain does not verify to CA "netconform test CA": ')
    assert certcheck.verify_chain(leaf, other.cert, HOST, NOW) == certcheck.Finding(
        True, "verified by other CA"
    )


def test_self_signed_is_not_trusted() -> None:
    own = certmint.make_self_signed([HOST], valid_from=NOW - DAY)
    ca = certmint.make_ca(valid_from=NOW - DAY)
    assert not certcheck.verify_chain(own.cert, ca.cert, HOST, NOW).ok
    assert certcheck.check_san(own.cert, HOST).ok  # the name is right, the issuer is not
    assert certcheck.check_not_fake(own.cert, HOST).ok


def test_the_fake_certificate_is_named_with_its_fields(ca: certmint.Minted) -> None:
    fake = certmint.make_fake_certificate(valid_from=NOW - DAY)
    assert isinstance(fake.key, rsa.RSAPrivateKey) and fake.key.key_size == 2048
    assert certcheck.dns_names(fake.cert) == ["ingress.local"]
    assert fake.cert.not_valid_after_utc - fake.cert.not_valid_before_utc == 365 * DAY
    assert certcheck.is_fake(fake.cert)
    finding = certcheck.check_served(fake.cert, HOST, None)
    assert finding == certcheck.Finding(
        False,
        "served the controller's fake certificate (CN=Kubernetes Ingress Controller Fake "
        "Certificate, O=Acme Co): no TLS Secret matched SNI secure.example",
    )
    # the fake comes first even when an expected certificate is given
    assert certcheck.check_served(fake.cert, HOST, host_cert(ca, NOW, 90)) == finding
    assert not certcheck.check_san(fake.cert, HOST).ok
    assert not certcheck.verify_chain(fake.cert, ca.cert, HOST, NOW).ok


def test_fingerprints_compare_and_agree_with_openssl(ca: certmint.Minted) -> None:
    served = certmint.make_host_cert(ca, [HOST], valid_from=NOW - DAY)
    expected = host_cert(ca, NOW - DAY, 90)
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=served.cert_pem,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert out.strip() == f"sha256 Fingerprint={certcheck.fingerprint(served.cert)}"
    same = certcheck.check_same(served.cert, served.cert)
    assert same.ok and same.message.startswith("served the expected certificate (sha256 ")
    other = certcheck.check_served(served.cert, HOST, expected)
    assert not other.ok
    assert other.message == (
        f"served sha256 {certcheck.fingerprint(served.cert)[:23]} (CN=secure.example), "
        f"not the expected sha256 {certcheck.fingerprint(expected)[:23]} (CN=secure.example)"
    )


def test_keys_are_ec_p256_unless_rsa_is_asked(ca: certmint.Minted) -> None:
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    leaf = certmint.make_host_cert(ca, [HOST], key="rsa")
    assert isinstance(leaf.key, rsa.RSAPrivateKey) and leaf.key.key_size == 2048
    assert certcheck.verify_chain(leaf.cert, ca.cert, HOST, dt.datetime.now(dt.UTC)).ok
    with pytest.raises(ValueError, match="at least one host"):
        certmint.make_host_cert(ca, [])


def test_tls_secret_carries_the_pair(ca: certmint.Minted) -> None:
    leaf = certmint.make_host_cert(ca, [HOST])
    secret = certmint.tls_secret("secure-tls", "central", leaf, [ca.cert])
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {"name": "secure-tls", "namespace": "central"}
    crt = base64.b64decode(secret["data"]["tls.crt"])
    certs = x509.load_pem_x509_certificates(crt)
    assert certs == [leaf.cert, ca.cert]
    key = base64.b64decode(secret["data"]["tls.key"])
    assert key == leaf.key_pem and key.startswith(b"-----BEGIN PRIVATE KEY-----")
