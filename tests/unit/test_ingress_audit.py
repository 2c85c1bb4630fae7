"""The ingress audit finds what a controller would serve wrong, each named, and nothing in a
clean set (expectations from the Ingress API reference and ingress-nginx's annotation docs)."""

from __future__ import annotations

import datetime as dt

from netconform.ingressaudit import Objects, audit
from tests.unit.ingress_objects import NS, Obj, canary, host_cert, ingress, path, rule, tls_secret

NOW = dt.datetime.now(dt.UTC)
SERVICES: dict[tuple[str, str], Obj] = {
    (NS, n): {"metadata": {"name": n, "namespace": NS}, "spec": {"type": "ClusterIP"}}
    for n in ("web", "empty", "beta")
}
READY = {(NS, "web"): 2, (NS, "empty"): 0, (NS, "beta"): 1}


def findings(*ingresses: Obj, secrets: list[Obj] | None = None, margin: int = 14) -> list[str]:
    objects = Objects(
        list(ingresses),
        SERVICES,
        READY,
        {(NS, s["metadata"]["name"]): s for s in secrets or []},
    )
    return [str(f) for f in audit(objects, "nginx", NOW, margin)]


def test_a_clean_set_has_no_findings() -> None:
    cert = host_cert("shop.example")
    main = ingress(
        "shop",
        rule("shop.example", path("/", "web")),
        tls=[{"hosts": ["shop.example"], "secretName": "tls"}],
    )
    beta = canary("beta", rule("shop.example", path("/", "beta")), weight="5")
    assert findings(main, beta, secrets=[tls_secret("tls", cert)]) == []


def test_backends_missing_or_without_endpoints() -> None:
    found = findings(
        ingress("shop", rule("shop.example", path("/a", "nosuch"), path("/b", "empty")))
    )
    assert found == [
        "Ingress east/shop: shop.example/a: backend Service east/nosuch not found (503)",
        "Ingress east/shop: shop.example/b: backend Service east/empty has no ready endpoints "
        "(503)",
    ]


def test_tls_secret_missing_malformed_wrong_host_expiring() -> None:
    good, soon = host_cert("other.example"), host_cert("soon.example", days=5)
    broken = tls_secret("broken", good)
    broken["data"]["tls.crt"] = "bm90IGEgY2VydA=="
    found = findings(
        ingress(
            "a",
            rule("a.example", path("/", "web")),
            tls=[{"hosts": ["a.example"], "secretName": "absent"}],
        ),
        ingress(
            "b",
            rule("b.example", path("/", "web")),
            tls=[{"hosts": ["b.example"], "secretName": "broken"}],
        ),
        ingress(
            "c",
            rule("c.example", path("/", "web")),
            tls=[{"hosts": ["c.example"], "secretName": "other"}],
        ),
        ingress(
            "d",
            rule("soon.example", path("/", "web")),
            tls=[{"hosts": ["soon.example"], "secretName": "soon"}],
        ),
        secrets=[broken, tls_secret("other", good), tls_secret("soon", soon)],
    )
    assert found[0] == (
        "Ingress east/a: TLS Secret east/absent not found: the controller serves"
        " its fake certificate for a.example"
    )
    assert found[1] == (
        "Ingress east/b: TLS Secret east/broken: tls.crt is not a PEM "
        "certificate: the controller serves its fake certificate"
    )
    assert found[2] == (
        "Ingress east/c: TLS Secret east/other does not name c.example: the "
        "controller serves its fake certificate for it"
    )
    assert found[3].startswith(
        "Ingress east/d: TLS Secret east/soon: certificate for soon.example expires"
    )
    assert "margin 14 days" in found[3] and len(found) == 4


def test_canary_problems() -> None:
    main = ingress("shop", rule("shop.example", path("/", "web")))
    heavy = canary("heavy", rule("shop.example", path("/", "beta")), weight="150")
    orphan = canary("orphan", rule("shop.example", path("/new", "beta")), weight="5")
    bad = canary(
        "bad", rule("shop.example", path("/", "beta")), by_header="X-Pat", by_header_pattern="a(b"
    )
    loose = ingress(
        "loose",
        rule("loose.example", path("/", "web")),
        annotations={"nginx.ingress.kubernetes.io/canary-weight": "5"},
    )
    found = findings(main, heavy, orphan, bad, loose)
    assert (
        "Ingress east/heavy: canary-weight 150 is above canary-weight-total 100: every "
        "request goes to the canary" in found
    )
    assert (
        "Ingress east/orphan: no main Ingress serves shop.example/new (Prefix): this canary "
        "is ignored" in found
    )
    assert any(
        f.startswith("Ingress east/bad: canary-by-header-pattern 'a(b' does not compile")
        for f in found
    )
    assert any(f.startswith("Ingress east/loose: canary annotations without") for f in found)
    assert len(found) == 4


def test_other_classes_are_not_audited() -> None:
    other = ingress("other", rule("x.example", path("/", "nosuch")), class_name="traefik")
    assert findings(other) == []
