"""Cloud preflight (seeds 000, 001, 003): read-only audits before any probe runs.

CIDRs do not overlap, peering is active between every pair, routes exist both ways, and
inbound rules open every required port from every peer. Ids: `aws:central->east:9092`.
"""

from __future__ import annotations

from fixtures.cloud import CloudAudits, explain
from netconform.cloudaudit import AuditCase


def test_cidrs_do_not_overlap(overlap_case: AuditCase, cloud_audits: CloudAudits) -> None:
    findings = cloud_audits.check(overlap_case)
    assert not findings, explain(findings)


def test_peering_active(peering_case: AuditCase, cloud_audits: CloudAudits) -> None:
    findings = cloud_audits.check(peering_case)
    assert not findings, explain(findings)


def test_routes_present(routes_case: AuditCase, cloud_audits: CloudAudits) -> None:
    findings = cloud_audits.check(routes_case)
    assert not findings, explain(findings)


def test_port_open(port_case: AuditCase, cloud_audits: CloudAudits) -> None:
    findings = cloud_audits.check(port_case)
    assert not findings, explain(findings)
