"""The lab's Kubernetes protobuf decoder and encoder, on bodies captured from kubectl 1.37.

Each `samples/protobuf/NAME.bin` is what `kubectl create ...` sent the lab; `NAME.json` is
what the same command prints with `--dry-run=client -o json`: decoding must give exactly it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioning.lab.apiserver.protobuf import ProtobufError, decode
from provisioning.lab.apiserver.protobuf_encode import encode

SAMPLES = Path(__file__).with_name("samples") / "protobuf"
NAMES = sorted(p.stem for p in SAMPLES.glob("*.bin"))


def without_nulls(value: Any) -> Any:
    """kubectl's JSON has `creationTimestamp: null` (Go's zero time); decoding drops it."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def test_samples_cover_kubectls_typed_commands() -> None:
    assert NAMES == ["configmap", "deployment", "namespace", "secret-generic",
                     "service-clusterip"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_decodes_what_kubectl_sent_as_kubectl_would_send_json(name: str) -> None:
    sent = (SAMPLES / f"{name}.bin").read_bytes()
    expected = json.loads((SAMPLES / f"{name}.json").read_text())
    assert decode(sent) == without_nulls(expected)


@pytest.mark.parametrize("name", NAMES)
def test_encoding_round_trips(name: str) -> None:
    obj = decode((SAMPLES / f"{name}.bin").read_bytes())
    assert decode(encode(obj)) == obj


def test_special_types_round_trip() -> None:
    pod = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": "2026-11-25T09:41:11Z",
                     "deletionGracePeriodSeconds": 0},
        "spec": {"containers": [{
            "name": "c", "image": "i", "ports": [{"containerPort": 80, "name": "http"}],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "readinessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 3},
            "livenessProbe": {"tcpSocket": {"port": 8080}},
        }], "automountServiceAccountToken": False, "securityContext": {"runAsUser": -1}},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.1"}]},
    }  # fmt: skip
    assert decode(encode(pod)) == pod


def test_zero_values_follow_go_json() -> None:
    """Pointer fields keep their zero (replicas 0, automount false); omitempty drops it."""
    deploy = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"},
              "spec": {"replicas": 0, "template": {"spec": {"containers": []}}}}  # fmt: skip
    assert decode(encode(deploy))["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Pod"}', "prefix k8s"),
        (b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Widget\x12\x00", "no protobuf schema for v1 Widget"),
        (
            b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x03\xf8\x07\x00",
            "Namespace has no field number 127",
        ),
        (b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x05\x0a\x09", "runs past the end"),
    ],
)
def test_bad_bodies_are_refused_naming_what(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(body)


def test_kinds_a_lab_may_serve_next_have_schemas() -> None:
    """`kubectl auth can-i` sends a SelfSubjectAccessReview; Jobs and Scale may come next."""
    review = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
              "metadata": {}, "spec": {"resourceAttributes": {
                  "namespace": "default", "verb": "create", "resource": "pods"}},
              "status": {"allowed": False}}  # fmt: skip
    assert decode(encode(review)) == review  # `allowed` has no omitempty: false stays
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d"},
             "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=d"}}  # fmt: skip
    assert decode(encode(scale)) == scale
