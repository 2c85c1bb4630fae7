"""The lab ingress controller's routing model: class selection, paths, backends, TLS,
redirects, canaries and the problems it reports, from Ingress objects as users write them.

Expectations come from the Kubernetes Ingress API reference and ingress-nginx's docs and
source (cited in provisioning/lab/ingress/model.py), not from the model's code."""

from __future__ import annotations

from dataclasses import replace

from provisioning.lab.ingress import model
from provisioning.lab.ingress.model import Overrides
from tests.unit.ingress_objects import (
    canary,
    endpoints,
    host_cert,
    ingress,
    path,
    rule,
    snapshot,
    tls_secret,
)

ECHO = {"echo": endpoints("10.1.1.1", "10.1.1.2"), "other": endpoints("10.1.2.1")}


def server(config: model.IngressConfig, host: str) -> model.Server:
    (found,) = [s for s in config.servers if s.host == host]
    return found


def locations(config: model.IngressConfig, host: str) -> dict[tuple[str, str], model.Location]:
    return {(loc.match, loc.path): loc for loc in server(config, host).locations}


def reasons(config: model.IngressConfig) -> list[str]:
    return [p.reason for p in config.problems]


def test_only_ingresses_of_an_ingress_nginx_class_are_served() -> None:
    ours = ingress("a", rule("a.example", path("/", "echo")))
    legacy = ingress(
        "b",
        rule("b.example", path("/", "echo")),
        class_name=None,
        annotations={"kubernetes.io/ingress.class": "nginx"},
    )
    other = ingress("c", rule("c.example", path("/", "echo")), class_name="traefik")
    none = ingress("d", rule("d.example", path("/", "echo")), class_name=None)
    config = model.build(snapshot(ours, legacy, other, none, services=ECHO))
    assert [s.host for s in config.servers] == ["a.example", "b.example"]
    assert config.served == (("east", "a"), ("east", "b"))


def test_prefix_paths_are_element_wise_and_ignore_a_trailing_slash() -> None:
    config = model.build(
        snapshot(
            ingress(
                "a",
                rule(
                    "h",
                    path("/foo/", "echo"),
                    path("/exact", "echo", "Exact"),
                    path("/impl", "echo", "ImplementationSpecific"),
                    path("/", "other"),
                ),
            ),
            services=ECHO,
        )
    )
    assert set(locations(config, "h")) == {
        ("prefix", "/foo"),
        ("exact", "/exact"),
        ("prefix", "/impl"),
        ("root", "/"),
    }


def test_the_older_ingress_keeps_a_path_both_define() -> None:
    first = ingress("first", rule("h", path("/foo", "echo")), created="2026-01-01T00:00:00Z")
    second = ingress("second", rule("h", path("/foo", "other")), created="2026-01-02T00:00:00Z")
    config = model.build(snapshot(second, first, services=ECHO))
    assert locations(config, "h")["prefix", "/foo"].ingress == ("east", "first")
    (problem,) = config.problems
    assert problem.ingress == ("east", "second") and problem.reason == "PathConflict"
    assert "already served by Ingress east/first" in problem.message


def test_backends_are_ready_endpoints_and_503_names_why() -> None:
    services = {
        "echo": endpoints("10.1.1.1"),
        "empty": endpoints(),
        "notready": endpoints("10.1.3.1", ready=False),
    }
    config = model.build(
        snapshot(
            ingress(
                "a",
                rule(
                    "h",
                    path("/ok", "echo"),
                    path("/empty", "empty"),
                    path("/notready", "notready"),
                    path("/missing", "nosuch"),
                    path("/badport", "echo", port=81),
                ),
            ),
            services=services,
        )
    )
    where = locations(config, "h")
    assert where["prefix", "/ok"].backend.servers == ("10.1.1.1:8080",)
    assert (
        where["prefix", "/empty"].backend.unavailable == "Service east/empty has no ready endpoints"
    )
    assert where["prefix", "/notready"].backend.upstream == ""
    assert where["prefix", "/missing"].backend.unavailable == "Service east/nosuch not found"
    assert where["prefix", "/badport"].backend.unavailable == "Service east/echo has no port 81"
    assert reasons(config) == ["BackendNotFound", "BackendNotFound"]


def test_named_service_ports_resolve_through_the_endpoint_slices() -> None:
    config = model.build(
        snapshot(ingress("a", rule("h", path("/", "echo", port="http"))), services=ECHO)
    )
    assert locations(config, "h")["root", "/"].backend.upstream == "east-echo-80"


def test_tls_uses_the_secret_valid_for_the_host_and_redirects() -> None:
    cert = host_cert("secure.example")
    config = model.build(
        snapshot(
            ingress(
                "a",
                rule("secure.example", path("/", "echo")),
                tls=[{"hosts": ["secure.example"], "secretName": "tls"}],
            ),
            services=ECHO,
            secrets=[tls_secret("tls", cert)],
        )
    )
    found = server(config, "secure.example")
    assert found.cert is not None and found.cert.cert_pem == cert.cert_pem
    assert found.locations[0].redirect
    assert config.problems == ()


def test_a_tls_section_without_a_usable_secret_serves_the_default_certificate() -> None:
    wrong = host_cert("other.example")
    config = model.build(
        snapshot(
            ingress(
                "missing",
                rule("m.example", path("/", "echo")),
                tls=[{"hosts": ["m.example"], "secretName": "absent"}],
            ),
            ingress(
                "mismatch",
                rule("w.example", path("/", "echo")),
                tls=[{"hosts": ["w.example"], "secretName": "wrong"}],
            ),
            ingress(
                "nosecret", rule("n.example", path("/", "echo")), tls=[{"hosts": ["n.example"]}]
            ),
            services=ECHO,
            secrets=[tls_secret("wrong", wrong)],
        )
    )
    for host in ("m.example", "w.example", "n.example"):
        assert server(config, host).cert is None, host
        assert server(config, host).locations[0].redirect, host  # a TLS section still redirects
    assert sorted(reasons(config)) == ["InvalidCertificate", "SecretNotFound"]


def test_a_malformed_certificate_is_named() -> None:
    broken = tls_secret("tls", host_cert("secure.example"))
    broken["data"]["tls.crt"] = "bm90IGEgY2VydGlmaWNhdGU="  # "not a certificate"
    config = model.build(
        snapshot(
            ingress(
                "a",
                rule("secure.example", path("/", "echo")),
                tls=[{"hosts": ["secure.example"], "secretName": "tls"}],
            ),
            services=ECHO,
            secrets=[broken],
        )
    )
    (problem,) = config.problems
    assert problem.reason == "InvalidCertificate"
    assert "Secret east/tls: tls.crt is not a PEM certificate" in problem.message


def test_redirect_annotations_and_configmap() -> None:
    tls = [{"hosts": ["h"]}]
    off = {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}
    force = {"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}
    config = model.build(
        snapshot(
            ingress("tls", rule("h", path("/", "echo")), tls=tls),
            ingress(
                "off",
                rule("off.example", path("/", "echo")),
                tls=[{"hosts": ["off.example"]}],
                annotations=off,
            ),
            ingress("force", rule("force.example", path("/", "echo")), annotations=force),
            ingress("plain", rule("plain.example", path("/", "echo"))),
            services=ECHO,
        )
    )
    redirects = {s.host: s.locations[0].redirect for s in config.servers}
    assert redirects == {
        "h": True,
        "off.example": False,
        "force.example": True,
        "plain.example": False,
    }
    globally_off = model.build(
        replace(snapshot(ingress("tls", rule("h", path("/", "echo")), tls=tls), services=ECHO)),
        Overrides(redirect_off=True),
    )
    assert not server(globally_off, "h").locations[0].redirect


def test_canaries_join_the_identical_host_path_of_a_main_ingress() -> None:
    main = ingress("main", rule("h", path("/foo", "echo"), path("/bar", "echo")))
    joined = canary("c1", rule("h", path("/foo", "other")), weight="5")
    no_main = canary("c2", rule("h", path("/baz", "other")), weight="5")
    other_type = canary("c3", rule("h", path("/bar", "other", "Exact")), weight="5")
    second = canary(
        "c4", rule("h", path("/foo", "other")), weight="50", created="2026-01-03T00:00:00Z"
    )
    config = model.build(snapshot(main, joined, no_main, other_type, second, services=ECHO))
    where = locations(config, "h")
    found = where["prefix", "/foo"].canary
    assert found is not None and found.ingress == ("east", "c1") and found.spec.weight == 5
    assert where["prefix", "/bar"].canary is None
    assert [p.ingress[1] for p in config.problems] == ["c2", "c3", "c4"]
    assert set(reasons(config)) == {"CanaryIgnored"}
    assert [s.host for s in config.servers] == ["h"]  # a canary makes no server of its own


def test_canary_weight_total_counts_only_above_100_and_a_skew_overrides_it() -> None:
    main = ingress("main", rule("h", path("/", "echo")))
    small = canary("c", rule("h", path("/", "other")), weight="5", weight_total="50")
    config = model.build(snapshot(main, small, services=ECHO))
    spec = locations(config, "h")["root", "/"].canary
    assert spec is not None and spec.spec.total == 100
    skewed = model.build(
        snapshot(main, small, services=ECHO), Overrides(weights={("east", "c"): 40})
    )
    spec = locations(skewed, "h")["root", "/"].canary
    assert spec is not None and spec.spec.weight == 40


def test_canary_annotations_without_canary_true_are_refused() -> None:
    main = ingress("main", rule("h", path("/", "echo")))
    half = ingress(
        "half",
        rule("h2", path("/", "other")),
        annotations={"nginx.ingress.kubernetes.io/canary-weight": "5"},
    )
    config = model.build(snapshot(main, half, services=ECHO))
    assert [s.host for s in config.servers] == ["h", "h2"]  # served as a regular Ingress
    (problem,) = config.problems
    assert problem.reason == "InvalidAnnotation" and "configured but not enabled" in problem.message


def test_invalid_annotation_values_and_unsupported_annotations_are_reported() -> None:
    notes = {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "five",
        "nginx.ingress.kubernetes.io/canary-by-header": "X Canary",
        "nginx.ingress.kubernetes.io/rewrite-target": "/",
    }
    main = ingress("main", rule("h", path("/", "echo")))
    odd = ingress(
        "odd", rule("h", path("/", "other")), annotations=notes, created="2026-01-02T00:00:00Z"
    )
    config = model.build(snapshot(main, odd, services=ECHO))
    messages = [p.message for p in config.problems]
    assert "nginx.ingress.kubernetes.io/canary-weight is invalid, defaulting to '0'" in messages
    assert "nginx.ingress.kubernetes.io/canary-by-header is invalid, defaulting to ''" in messages
    assert any("rewrite-target is not supported" in m for m in messages)
    spec = locations(config, "h")["root", "/"].canary
    assert spec is not None and spec.spec.weight == 0 and spec.spec.header == ""


def test_rejected_ingresses_are_left_out_and_named() -> None:
    good = ingress("good", rule("good.example", path("/", "echo")))
    bad = ingress("bad", rule("bad.example", path("/", "echo")))
    config = model.build(
        snapshot(good, bad, services=ECHO),
        Overrides(excluded={("east", "bad"): "nginx refused it"}),
    )
    assert [s.host for s in config.servers] == ["good.example"]
    assert config.problems == (
        model.Problem(("east", "bad"), "RejectedConfiguration", "nginx refused it"),
    )


def test_hostless_rules_and_default_backends_go_to_the_default_server() -> None:
    catch_all = ingress("all", rule(None, path("/api", "echo")))
    catch_all["spec"]["defaultBackend"] = {"service": {"name": "other", "port": {"number": 80}}}
    config = model.build(snapshot(catch_all, services=ECHO))
    assert {(loc.match, loc.path) for loc in config.default.locations} == {
        ("prefix", "/api"),
        ("root", "/"),
    }


def test_configmap_values_the_real_controller_refuses_keep_their_defaults() -> None:
    config = model.build(snapshot(configmap={"http-redirect-code": "303", "hsts": "maybe"}))
    assert config.settings.http_redirect_code == 308
    assert len(config.settings.problems) == 2
