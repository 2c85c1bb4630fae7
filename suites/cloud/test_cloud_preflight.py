"""Cloud preflight (seeds 000, 001, 003): read-only audits before any probe runs.

CIDRs do not overlap, peering is active between every pair, routes exist both ways, and
inbound rules open every required port from every peer. Ids: `aws:central->east:9092`.
"""

from __future__ import annotations

import pytest

from fixtures.cloud import CloudAudits, explain
from netconform.cloudaudit import AuditCase, AuditFinding


def passes(findings: list[AuditFinding]) -> None:
    """Fail with the findings, one per line (no assertion repr after them)."""
    if findings:
        pytest.fail(explain(findings), pytrace=False)


def test_cidrs_do_not_overlap(overlap_case: AuditCase, cloud_audits: CloudAudits) -> None:
    passes(cloud_audits.check(overlap_case))


def test_peering_active(peering_case: AuditCase, cloud_audits: CloudAudits) -> None:
    passes(cloud_audits.check(peering_case))


def test_routes_present(routes_case: AuditCase, cloud_audits: CloudAudits) -> None:
    passes(cloud_audits.check(routes_case))


def test_port_open(port_case: AuditCase, cloud_audits: CloudAudits) -> None:
    passes(cloud_audits.check(port_case))
