"""The published topology schema and the README's reference are the loader's own model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jsonschema
import pytest
import yaml

from netconform import topology_jsonschema as published
from netconform.errors import TopologyError
from netconform.topology import (
    SCHEMA,
    CloudNetwork,
    Cluster,
    Drift,
    Images,
    IngressSettings,
    ProbeSettings,
    Timeouts,
    Topology,
    load_topology,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [*sorted((REPO / "examples").glob("*.yaml")), REPO / "examples/ci/topology.yaml"]


def test_schema_file_is_generated_from_the_loaders_model() -> None:
    committed = published.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == published.schema_text(), (
        "netconform/topology.schema.json drifted: run python -m netconform.topology_jsonschema"
    )


def test_readme_reference_is_generated_from_the_loaders_model() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert published.readme_reference(readme) == published.reference(), (
        "README's topology reference drifted: run python -m netconform.topology_jsonschema"
    )


def test_check_mode_names_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "topology.schema.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(published, "SCHEMA_FILE", stale)
    assert published.main(["--check"]) == 1


def test_every_setting_field_is_a_key_of_its_section() -> None:
    sections = {k.name: k.section for k in SCHEMA.keys if k.section is not None}
    classes = {
        "images": Images,
        "probe": ProbeSettings,
        "timeouts": Timeouts,
        "drift": Drift,
        "ingress": IngressSettings,
        "clusters": Cluster,
    }
    for name, cls in classes.items():
        section = sections[name]
        assert section is not None
        assert section.names == tuple(f.name for f in dataclasses.fields(cls)), name
    network = sections["clusters"].key("network")
    assert network is not None and network.section is not None
    assert network.section.names == tuple(f.name for f in dataclasses.fields(CloudNetwork))
    # the root: Topology's fields, its ports under `ports`, `source` being where it was read
    fields = {f.name for f in dataclasses.fields(Topology)} - {"source"}
    fields -= {"required_ports", "closed_ports"}
    assert set(SCHEMA.names) == fields | {"ports"}


def test_every_key_has_a_description() -> None:
    def walk(section: object) -> list[str]:
        missing = []
        for key in section.keys:  # type: ignore[attr-defined]
            if not key.description:
                missing.append(key.name)
            if key.section is not None:
                missing += walk(key.section)
        return missing

    assert walk(SCHEMA) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_both_the_loader_and_the_json_schema(path: Path) -> None:
    load_topology(path)
    schema = yaml.safe_load(published.schema_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


@pytest.mark.parametrize(
    "doc",
    [
        {"clusters": [{"name": "a", "contxt": "x", "pod_cidrs": []}]},
        {"clusters": [{"name": "a", "pod_cidrs": []}], "imagez": {}},
        {"clusters": [{"name": "a", "pod_cidrs": ["10.300.0.0/16"]}]},
        {"clusters": [{"name": "a", "pod_cidrs": []}], "probe": {"ping_count": 10**9}},
        {"clusters": [{"name": "a", "pod_cidrs": []}], "timeouts": {"exec": -1}},
        {"clusters": [{"name": "a"}]},
    ],
)
def test_the_json_schema_refuses_what_the_loader_refuses(doc: dict[str, object]) -> None:
    from netconform.topology import parse_topology

    with pytest.raises(TopologyError):
        parse_topology(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, published.json_schema())
