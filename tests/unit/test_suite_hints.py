"""Hints written inside suites, fed the data that contradicts their other story: the DNS
LoadBalancer check names the LB itself only where no pod reached it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from netconform.outcomes import TIMEOUT, Answer, Case, Endpoint, Verdict, dns_name

SUITES = Path(__file__).resolve().parents[2] / "suites"


def suite(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hint_{Path(path).stem}", SUITES / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def lookup(src: str, lb_cluster: str, ok: bool) -> Case:
    asker = Endpoint(src, "probe-0-0", "10.1.1.1", f"{src}-node-0")
    answer = Answer(Verdict.ALLOW, ("10.2.2.2",))
    return Case(asker, dns_name(lb_cluster, f"echo.{lb_cluster}.svc.cluster.local"), "dns", 0,
                answer, answer if ok else TIMEOUT, "")  # fmt: skip


def test_the_dns_lb_hint_blames_the_lb_only_where_no_pod_reached_it() -> None:
    from netconform.checks.dns import lb_cause

    down = lb_cause([lookup("east", "west", False), lookup("central", "west", False)])
    assert "the DNS LoadBalancer of west (kube-system/kube-dns-lb): check its address" in down
    # contradicting data: central reaches west's LB, east does not (a cut east<->west path)
    cut = lb_cause([lookup("east", "west", False), lookup("central", "west", True)])
    assert "check its address" not in cut and "its endpoints" not in cut
    assert "the path from the failing clusters to it" in cut
