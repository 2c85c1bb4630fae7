"""What allure-pytest does not write itself: the environment and the failure categories, for
Allure 2 (environment.properties, categories.json) and Allure 3 (its config file, which
`reports.html` generates from the same list)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

from netconform.topology import Topology

#: (name, what the message contains: a regular expression both engines read, statuses).
#: First match wins: a message names the category of its first matching pattern.
CATEGORY_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Regression (passed in the baseline)", r"REGRESSION", ("failed", "broken")),
    ("Security: unexpected allow", r"SECURITY: unexpected allow", ("failed",)),
    ("Outage: unexpected drop", r"OUTAGE: unexpected drop", ("failed",)),
    ("Outage: unexpected refusal", r"OUTAGE: unexpected refusal", ("failed",)),
    ("MTU", r"MTU black hole|observed MTU|path MTU", ("failed",)),
    ("Packet loss", r"observed LOSS", ("failed",)),
    ("Wrong weight (canary share)", r"weight|observed SHARE", ("failed",)),
    ("Certificate", r"CERT |certificate|TLS_ERROR", ("failed",)),
    ("Redirect", r"HTTP 30[1278]|redirect", ("failed",)),
    ("NXDOMAIN", r"observed NXDOMAIN", ("failed",)),
    ("Timeout (dropped)", r"observed TIMEOUT", ("failed",)),
    ("Refused", r"observed REFUSED", ("failed",)),
    ("Unreachable", r"observed UNREACHABLE", ("failed",)),
    ("Probe error", r"observed ERROR", ("failed", "broken")),
    ("Cloud network glue", r"(aws|gcp|azure|lab) [\w.-]+->[\w.-]+: ", ("failed",)),
    ("DNS stub domains", r"stub|kube-dns-lb", ("failed",)),
    ("Policy drop", r"policy", ("failed",)),
)
BROKEN = {"name": "Test infrastructure", "matchedStatuses": ["broken"]}

#: Allure 2 (categories.json) matches the whole message: each pattern wrapped to find it
CATEGORIES = [
    {"name": name, "messageRegex": f"(?s).*(?:{pattern}).*", "matchedStatuses": list(statuses)}
    for name, pattern, statuses in CATEGORY_RULES
] + [BROKEN]


def allure3_categories() -> list[dict[str, object]]:
    """The same categories for Allure 3's config: JavaScript regexes searched in the message."""
    found: list[dict[str, object]] = [
        {"name": name, "messageRegex": pattern, "matchedStatuses": list(statuses)}
        for name, pattern, statuses in CATEGORY_RULES
    ]
    return [*found, dict(BROKEN)]


def environment(
    topology: Topology,
    run_id: str,
    profile: str,
    versions: Mapping[str, str],
    load: Sequence[float],
) -> list[tuple[str, str]]:
    """The run's environment: clusters, contexts, server versions, run id, profile, load."""
    load_text = " ".join(f"{v:g}" for v in load) or "unknown"
    items = [
        ("topology", topology.name),
        ("run_id", run_id),
        ("profile", profile),
        ("python", platform.python_version()),
        ("runner_load", f"{load_text} on {os.cpu_count() or '?'} CPUs (1/5/15 min)"),
    ]
    for cluster in topology.clusters:
        items.append(
            (
                f"cluster.{cluster.name}",
                f"context {cluster.context}, namespace {cluster.namespace}, server "
                f"{versions.get(cluster.name) or 'not asked'}, pods {','.join(cluster.pod_cidrs)}",
            )
        )
    return items


def write_environment(
    results: Path,
    topology: Topology,
    run_id: str,
    profile: str = "full",
    versions: Mapping[str, str] | None = None,
    load: Sequence[float] = (),
) -> None:
    results.mkdir(parents=True, exist_ok=True)
    items = environment(topology, run_id, profile, versions or {}, load)
    lines = [f"{key}={value}" for key, value in items]
    (results / "environment.properties").write_text("\n".join(lines) + "\n")


def write_categories(results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
