"""One small interface for the cloud glue: plan, apply, snapshot (read-only audit input).

A provider reads the current state, returns the changes it would make (`plan`), then makes
exactly those (`apply`). Planning twice after an apply yields only `noop` changes.

This module imports no provider: providers (provisioning.aws, .gcp, .azure) import it, and
`provisioning.providers` finds them by name (an import-linter contract keeps it so).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TextIO

from netconform.cidr import refuse_overlaps
from netconform.cloudaudit import Snapshot
from netconform.errors import CloudError, NetconformError, TopologyError
from netconform.topology import Cluster, Topology

Action = Literal["create", "update", "noop"]
CLOUD_NAMES = ("aws", "gcp", "azure")
#: what the audits read: the clouds, and the lab as a cloud (provisioning.lab.cloud)
AUDITED_CLOUDS = (*CLOUD_NAMES, "lab")


@dataclass(frozen=True)
class Change:
    """One resource the plan creates, updates or leaves alone."""

    cloud: str
    """aws, gcp or azure."""
    region: str
    """Cloud region the call goes to (`global` for GCP networks and firewalls)."""
    action: Action
    """create, update or noop."""
    resource: str
    """What: `vpc peering central<->east`, `route rtb-1 -> 10.102.0.0/16`."""
    detail: str = ""
    """Why or how: `via pcx-1`, `already present`."""
    run: Callable[[], str] | None = field(default=None, compare=False, repr=False)
    """Makes the change; returns what was done (ids). None for noop."""

    def line(self) -> str:
        extra = f"  ({self.detail})" if self.detail else ""
        return f"  {self.action:<6} {self.resource}{extra}"


@dataclass
class ApplyReport:
    """What an apply did, in plan order."""

    applied: list[tuple[Change, str]] = field(default_factory=list)
    """Changes made, with what each call returned."""
    unchanged: list[Change] = field(default_factory=list)
    """noop changes."""

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    def summary(self) -> str:
        if not self.applied:
            return f"no changes: all {len(self.unchanged)} resources already as planned"
        created = sum(1 for c, _ in self.applied if c.action == "create")
        updated = len(self.applied) - created
        return f"applied: {created} created, {updated} updated, {len(self.unchanged)} unchanged"


class Provider(Protocol):
    """A cloud's glue: what exists, what to change, and a read-only snapshot for audits."""

    cloud: str

    def plan(self) -> list[Change]:
        """Read the cloud and list the changes; makes no change."""
        ...

    def apply(self, plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
        """Make the plan's changes in order."""
        ...

    def snapshot(self) -> Snapshot:
        """Read peerings, routes and rules for the audits; makes no change."""
        ...


def apply_changes(plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
    """Run each change in order; on failure, say what was applied before it."""
    report = ApplyReport()
    for change in plan:
        if change.action == "noop" or change.run is None:
            report.unchanged.append(change)
            continue
        try:
            result = change.run()
        except NetconformError as err:
            raise CloudError(_partial(report, change, err)) from None
        report.applied.append((change, result))
        if out is not None:
            print(f"  done   {change.resource}: {result}", file=out)
    return report


def _partial(report: ApplyReport, change: Change, err: NetconformError) -> str:
    done = "; ".join(f"{c.resource} ({r})" for c, r in report.applied) or "nothing"
    return f"{err} -- while applying {change.resource!r}; applied before it: {done}"


def cloud_clusters(topology: Topology, cloud: str) -> tuple[Cluster, ...]:
    """The clusters on `cloud`, each checked for a network and a cloud region."""
    clusters = tuple(c for c in topology.clusters if c.cloud == cloud)
    for c in clusters:
        if c.network is None:
            raise TopologyError(f"cluster {c.name} (cloud {cloud}): network: missing required key")
        if not c.cloud_region:
            raise TopologyError(
                f"cluster {c.name} (cloud {cloud}): cloud_region: missing required key"
            )
    return clusters


def all_cloud_clusters(topology: Topology) -> tuple[Cluster, ...]:
    """Every cluster on aws, gcp or azure."""
    return tuple(c for c in topology.clusters if c.cloud in CLOUD_NAMES)


def check_overlaps(topology: Topology) -> None:
    """Refuse, before any call, to glue networks whose ranges overlap."""
    refuse_overlaps(all_cloud_clusters(topology))


def print_plan(changes: Sequence[Change], out: TextIO) -> None:
    """The plan per cloud and region, then a one-line count."""
    groups: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        groups.setdefault((change.cloud, change.region), []).append(change)
    for (cloud, region), items in groups.items():
        print(f"{cloud} {region}:", file=out)
        for change in items:
            print(change.line(), file=out)
    todo = sum(1 for c in changes if c.action != "noop")
    print(f"plan: {todo} to change, {len(changes) - todo} unchanged", file=out)


def credentials_problem(cloud: str) -> str:
    """'' when credentials for `cloud` are configured; else what is missing. No network.

    The lab needs none (its provider says so when no lab runs)."""
    if cloud == "lab":
        return ""
    checks: dict[str, Callable[[], bool]] = {
        "aws": _aws_credentials,
        "gcp": _gcp_credentials,
        "azure": _azure_credentials,
    }
    hints = {
        "aws": "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)",
        "gcp": "no GCP credentials (set GOOGLE_APPLICATION_CREDENTIALS or run "
        "`gcloud auth application-default login`)",
        "azure": "no Azure credentials (set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
        "AZURE_CLIENT_SECRET, or run `az login`)",
    }
    return "" if checks[cloud]() else hints[cloud]


def _dmi(field_name: str) -> str:
    try:
        return Path(f"/sys/class/dmi/id/{field_name}").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _aws_credentials() -> bool:
    import botocore.session

    session = botocore.session.get_session()
    resolver = session.get_component("credential_provider")
    if not _dmi("sys_vendor").startswith("Amazon"):
        resolver.remove("iam-role")  # instance metadata: only on EC2, never probed elsewhere
    return resolver.load_credentials() is not None


def _gcp_credentials() -> bool:
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env:
        return Path(env).is_file()
    config = Path(os.environ.get("CLOUDSDK_CONFIG", Path.home() / ".config" / "gcloud"))
    adc = config / "application_default_credentials.json"
    return adc.is_file() or _dmi("product_name").startswith("Google")


def _azure_credentials() -> bool:
    env = os.environ
    if (
        env.get("AZURE_CLIENT_ID")
        and env.get("AZURE_TENANT_ID")
        and any(
            env.get(k)
            for k in (
                "AZURE_CLIENT_SECRET",
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "AZURE_FEDERATED_TOKEN_FILE",
            )
        )
    ):
        return True
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        return True
    profile = Path(env.get("AZURE_CONFIG_DIR", Path.home() / ".azure")) / "azureProfile.json"
    return profile.is_file() and shutil.which("az") is not None
