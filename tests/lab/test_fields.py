"""The typed reads of tests/lab/fields.py: a missing field fails naming it, a manifest becomes
the model its wire names describe."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.lab.fields import model, name_of, need, pod_ip


def test_a_missing_field_fails_the_test_naming_it() -> None:
    assert need("x", "spec") == "x"
    with pytest.raises(AssertionError, match=r"the API object has no spec\.clusterIP"):
        need(None, "spec.clusterIP")
    with pytest.raises(AssertionError, match=r"status\.podIP \(pod web\)"):
        pod_ip(model(client.V1Pod, {"metadata": {"name": "web"}, "status": {}}))


def test_a_manifest_becomes_its_model_by_wire_names() -> None:
    pod = model(client.V1Pod, {"apiVersion": "v1", "metadata": {"name": "w", "generateName": "w-"},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}})  # fmt: skip
    assert isinstance(pod, client.V1Pod) and pod.api_version == "v1"
    assert name_of(pod) == "w" and pod.metadata and pod.metadata.generate_name == "w-"
    with pytest.raises(ValueError, match="specc"):  # pydantic refuses what the client would
        model(client.V1Pod, {"specc": {}})
