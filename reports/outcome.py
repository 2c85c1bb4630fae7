"""The outcome file: every case of a run, versioned JSON with a published JSON Schema
(`reports/outcome.schema.json`), so that a later run (or `netconform-report diff`) can take it
as its baseline.

Written atomically (a temporary file in the same directory, then a rename), so a reader never
sees half a file, also when the run failed or was interrupted (`status` says which).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netconform.errors import OutcomeFileError
from netconform.outcomes import Case
from netconform.record import case_id, case_numbers, pair_of
from netconform.redact import redact
from netconform.result import Key, Result
from netconform.topology import Topology

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("outcome.schema.json")
KIND = "netconform-outcome"


def topology_digest(topology: Topology) -> str:
    """`sha256:...` of what makes two runs comparable: the clusters (name, context, namespace,
    address ranges, DNS zone, cloud) and the declared ports. Paths, the kubeconfig and the lab's
    name prefix are left out: two 3-region labs have the same digest, a 9-region one another."""
    identity = {
        "clusters": [
            {
                "name": c.name,
                "context": c.context,
                "namespace": c.namespace,
                "pod_cidrs": list(c.pod_cidrs),
                "service_cidrs": list(c.service_cidrs),
                "dns_zone": c.dns_zone,
                "cloud": c.cloud,
                "cloud_region": c.cloud_region,
                "network": c.network.id if c.network else "",
            }
            for c in topology.clusters
        ],
        "required_ports": sorted(topology.required_ports),
        "closed_ports": sorted(topology.closed_ports),
    }
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@dataclass
class RunInfo:
    """What the outcome file says about the run itself."""

    run_id: str
    profile: str
    topology: Topology
    started: str
    """ISO 8601, UTC."""
    finished: str = ""
    status: str = "running"
    """passed, failed, interrupted or error."""
    exit_status: int | None = None
    server_versions: dict[str, str] = field(default_factory=dict)
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()


def case_record(case: Case, slice_key: str, supported: bool = True) -> dict[str, Any]:
    """One case as the outcome file records it."""
    measured = case_numbers(case)
    record: dict[str, Any] = {
        "id": case_id(case, slice_key),
        "slice": slice_key,
        "pair": pair_of(case),
        "source": case.source.label,
        "destination": case.target,
        "probe": case.protocol,
        "port": case.port,
        "expected": str(case.expected),
        "observed": str(case.observed),
        "verdict": str(case.observed.verdict),
        "passed": case.passed if supported else None,
        "detail": case.detail,
        "numbers": measured.numbers,
    }
    expected = case.expected.numbers()
    if expected:
        record["expected_numbers"] = expected
    if measured.samples:
        record["samples"] = measured.samples
    if measured.starved:
        record["starved"] = True
    return record


def check_record(check_id: str, result: Result, slice_by: Key) -> dict[str, Any]:
    """A check's cases, ids made unique (`#2`) where two cases would share one."""
    cases = [case_record(c, slice_by(c)) for c in result.cases]
    cases += [case_record(c, slice_by(c), supported=False) for c in result.not_supported]
    seen: dict[str, int] = {}
    for record in cases:
        n = seen[record["id"]] = seen.get(record["id"], 0) + 1
        if n > 1:
            record["id"] += f" #{n}"
    return {"id": check_id, "cases": cases}


def build(
    run: RunInfo, checks: Iterable[dict[str, Any]], tests: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The whole document."""
    topology = run.topology
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "profile": run.profile,
        "status": run.status,
        "exit_status": run.exit_status,
        "started": run.started,
        "finished": run.finished,
        "topology": {
            "name": topology.name,
            "digest": topology_digest(topology),
            "clusters": [
                {
                    "name": c.name,
                    "context": c.context,
                    "namespace": c.namespace,
                    "server_version": run.server_versions.get(c.name, ""),
                }
                for c in topology.clusters
            ],
        },
        "runner": {
            "cpus": os.cpu_count() or 0,
            "load_before": list(run.load_before),
            "load_after": list(run.load_after),
        },
        "tests": [dict(t) for t in tests],
        "checks": sorted(checks, key=lambda c: str(c["id"])),
    }


def write_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Temporary file beside `path`, flushed, then renamed over it; no known secret in it
    (`netconform.redact`: a failure message may have quoted one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(redact(json.dumps(document, indent=1, sort_keys=False)))
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def validate(document: Any, where: str = "<outcome>") -> dict[str, Any]:
    """The document if it is an outcome file of a known version that fits the schema;
    OutcomeFileError (one line) otherwise."""
    import jsonschema

    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise OutcomeFileError(f"{where}: not a netconform outcome file (no kind: {KIND})")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise OutcomeFileError(
            f"{where}: unknown outcome schema version {version!r} "
            f"(this netconform reads version {SCHEMA_VERSION})"
        )
    errors = sorted(
        jsonschema.Draft202012Validator(schema()).iter_errors(document),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "<root>"
        raise OutcomeFileError(f"{where}: {at}: {first.message[:200]}")
    return document


def read(path: Path) -> dict[str, Any]:
    """Load and validate an outcome file; every problem is one line (OutcomeFileError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise OutcomeFileError(f"{path}: cannot read outcome file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise OutcomeFileError(f"{path}: not a text (UTF-8) file") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise OutcomeFileError(f"{path}: not JSON: line {err.lineno}: {err.msg}") from None
    return validate(document, str(path))
