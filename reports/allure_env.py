"""What allure-pytest does not write itself: environment.properties and categories.json."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from netconform.topology import Topology

#: Failure categories by the words the suites' messages use (Allure 2; Allure 3 reads
#: the same list from allurerc.mjs).
CATEGORIES = [
    # first: a message matches the first category whose regex it matches
    {
        "name": "Security: unexpected allow",
        "messageRegex": r"(?s).*SECURITY: unexpected allow.*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Outage: unexpected drop",
        "messageRegex": r"(?s).*OUTAGE: unexpected drop.*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Timeout (dropped)",
        "messageRegex": r"(?s).*observed TIMEOUT.*",
        "matchedStatuses": ["failed"],
    },
    {"name": "Refused", "messageRegex": r"(?s).*observed REFUSED.*", "matchedStatuses": ["failed"]},
    {
        "name": "Unreachable",
        "messageRegex": r"(?s).*observed UNREACHABLE.*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Packet loss",
        "messageRegex": r"(?s).*observed LOSS.*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Probe error",
        "messageRegex": r"(?s).*observed ERROR.*",
        "matchedStatuses": ["failed", "broken"],
    },
    {"name": "NXDOMAIN", "messageRegex": r"(?s).*NXDOMAIN.*", "matchedStatuses": ["failed"]},
    {"name": "Policy drop", "messageRegex": r"(?s).*policy.*", "matchedStatuses": ["failed"]},
    {"name": "Wrong weight", "messageRegex": r"(?s).*weight.*", "matchedStatuses": ["failed"]},
    {"name": "Certificate", "messageRegex": r"(?s).*certificate.*", "matchedStatuses": ["failed"]},
    {"name": "Test infrastructure", "matchedStatuses": ["broken"]},
]


def write_environment(results: Path, topology: Topology, run_id: str) -> None:
    results.mkdir(parents=True, exist_ok=True)
    lines = [f"topology={topology.name}", f"run_id={run_id}", f"python={platform.python_version()}"]
    for cluster in topology.clusters:
        lines.append(
            f"cluster.{cluster.name}={cluster.context} ns={cluster.namespace} "
            f"pods={','.join(cluster.pod_cidrs)}"
        )
    (results / "environment.properties").write_text("\n".join(lines) + "\n")


def write_categories(results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
