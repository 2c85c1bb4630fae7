"""Every manifest the suites deploy validates against the published Kubernetes schema (the
same check the lab's API server makes), so no suite depends on something only the lab takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioning.lab.apiserver.validation import check, validator

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted([*ROOT.glob("suites/**/*.yaml"), ROOT / "fixtures" / "probe-pod.yaml"])


def objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                found.append((f"{path.relative_to(ROOT)}#{index}", doc))
    return found


def test_there_are_manifests() -> None:
    assert len(objects()) >= 3


@pytest.mark.parametrize(("where", "obj"), objects(), ids=[w for w, _ in objects()])
def test_manifest_validates(where: str, obj: dict[str, Any]) -> None:
    assert validator(obj["apiVersion"], obj["kind"]) is not None, f"{where}: no schema"
    found, _ = check(obj)
    assert found == ([], [], []), f"{where}: {found}"


def test_the_check_finds_what_a_server_refuses() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"replicas": "3", "selector": {"matchLabels": {"a": "b"}},
                       "template": {"spec": {"contianers": [{"image": "nginx"}]}}}}  # fmt: skip
    found, _ = check(deploy)
    assert found.unknown == ["spec.template.spec.contianers"]
    assert found.missing == ["spec.template.spec.containers"]
    assert len(found.types) == 1 and "spec.replicas" in found.types[0]
