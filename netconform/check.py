"""A check is data (gateway-api style): an id, what it proves, what it requires, how to build
its scenario (manifests beside it), its oracle, how its result is sliced and explained.

The pytest side (`fixtures.checks`) measures a check once per run, hands each parametrized
test its slice, and reports `not supported: <reason>` when a requirement is not met.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from netconform.cidr import between, in_overlap, overlap_reason
from netconform.cluster import ClusterClient
from netconform.echo import ECHO_PATH
from netconform.errors import NetconformError
from netconform.outcomes import Case, Endpoint, Outcome, Served
from netconform.probes.base import Probe
from netconform.profiles import FULL, SMOKE, Selector, smoke_settings
from netconform.reachability import likely_cause
from netconform.result import Key, Result, region_pair
from netconform.scenario import Oracle, Scenario, always_allow
from netconform.topology import Topology
from netconform.vantage import Vantage

Lead = Callable[[Sequence[Case]], tuple[list[str], bool]]
"""The run's diagnosis for a slice's failed cases: its lines, and whether they cover all."""
T = TypeVar("T")


class Environment(Protocol):
    """What a check's setup may use: the topology, the clusters, and deployment of this
    run's labelled workloads."""

    @property
    def topology(self) -> Topology: ...

    @property
    def clusters(self) -> Mapping[str, ClusterClient]: ...

    def pods_on_every_node(
        self, template: dict[str, Any], prefix: str, image: str, port: int, per_node: int
    ) -> dict[str, list[Endpoint]]:
        """`per_node` pods pinned to each schedulable node of each cluster, all running."""
        ...

    def probe_pods(self) -> dict[str, list[Endpoint]]:
        """The standard probe pods (the sources of most checks), per cluster, all running."""
        ...

    def service(self, cluster: str, name: str, ready: int = 1) -> Endpoint:
        """A Service this run applied, by its ClusterIP, once `ready` endpoints are ready."""
        ...

    def apply(self, cluster: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Apply a manifest labelled with this run's id into the cluster's namespace."""
        ...

    def apply_all(
        self,
        manifests: Sequence[dict[str, Any]],
        clusters: Iterable[str] | None = None,
        edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Every manifest (the YAML beside a check) into every cluster's namespace (or only
        `clusters`'), each passed through `edit` first (e.g. `ingress.retarget`)."""
        ...

    def sources(self) -> list[Endpoint]:
        """The standard probe pods of every cluster, in one list (`probe_pods` flattened)."""
        ...

    def first_sources(self) -> list[Endpoint]:
        """One standard probe pod per cluster (the first of each), in cluster order."""
        ...

    def probe_pods_in(self, namespace: str) -> dict[str, list[Endpoint]]:
        """Probe pods in `namespace` of every cluster that has it (only where the topology's
        `network_policy.probe_namespaces` allows), per cluster."""
        ...

    def region_namespace(self, cluster: str) -> str:
        """The cluster's region namespace (where this run's workloads go)."""
        ...

    def services(self, name: str, ready: int = 1) -> dict[str, Endpoint]:
        """cluster -> this run's Service `name` by its ClusterIP, once `ready` endpoints are
        ready in each (`service`, per cluster)."""
        ...

    def vantage(self, endpoint: Endpoint) -> Vantage:
        """Where probes from `endpoint` run (a pod's exec)."""
        ...

    def vantages(self, sources: Iterable[Endpoint]) -> dict[Endpoint, Vantage]:
        """A Scenario's vantages: each pod's exec; `RUNNER` the runner (the topology's netns,
        one batch bounded by the named `exec` timeout)."""
        ...

    def scenario(
        self,
        sources: Iterable[Endpoint],
        destinations: Sequence[Endpoint],
        probes: Sequence[Probe],
        **options: Any,
    ) -> Scenario:
        """A Scenario from `sources` (their `vantages`) with the topology's probe settings;
        `options` are Scenario's own (include, context, expect, explain...)."""
        ...

    def load_balancers(self, name: str) -> dict[str, Endpoint]:
        """cluster -> this run's LoadBalancer Service `name` by its address, once every
        cluster's has one (named wait `load_balancer`); {} when no cluster has a LoadBalancer
        implementation at all. Waited for once per environment: a timeout is remembered."""
        ...

    def ready_pods(self, cluster: str, deployment: str) -> list[Endpoint]:
        """The pods of this run's Deployment `deployment`, once its replicas all run."""
        ...

    def served_by(self, deployment: str, code: int = 200) -> dict[str, Served]:
        """cluster -> the answer its `deployment` must give: HTTP `code` from one of its own
        ready pods (`ready_pods`), named `<cluster>/<deployment>` in messages."""
        ...

    def unsupported(self, source: Endpoint, probe: Probe) -> str:
        """Why `probe` cannot run from `source` ("" when it can): e.g. its namespace
        enforces a Pod Security level that takes away a capability the probe needs."""
        ...

    def remember(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()` once for this environment, its value or its error remembered: a setup
        that several checks (and a requirement) share, instead of module state; checks
        measured at once wait for the one computing it."""
        ...


@dataclass(frozen=True)
class Requirement:
    """A capability a check needs; unmet, the check is `not supported: <reason>`."""

    reason: str
    """Said when unmet: `no IngressClass`, `the topology names no cloud`."""
    met: Callable[[Environment], object]
    """Met when it returns something truthy: a bool, or the value of a setup the check's
    scenario shares (`Environment.remember`), such as the LoadBalancers it found."""


@dataclass(frozen=True)
class Table:
    """A matrix for the report (loss/RTT per region pair, a truth table)."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    bad: tuple[bool, ...] = ()


PARAMETERS: Mapping[str, str] = {
    "region": "one test per cluster: `test_x[east]`",
    "region_pair": "one per ordered pair of clusters, a cluster with itself included: "
    "`test_x[east->east]`, `test_x[east->west]`",
    "peer_pair": "one per ordered pair of two different clusters: `test_x[east->west]`",
    "region_port": "one per ordered pair of different clusters and each required or closed "
    "port: `test_x[east->west:9092]`",
}
"""The parametrization keys `fixtures.plugin` generates from the topology: a test asks for
one by naming it as a parameter (`def test_x(peer_pair, verify)`)."""


@dataclass(frozen=True)
class Check:
    """One suite's declaration."""

    id: str
    """Short name, also the key its measurement is shared under (`pod-to-pod`)."""
    description: str
    scenario: Callable[[Environment], Scenario]
    """Deploys what the check needs (manifests beside it) and returns what to probe, and the
    oracle and cause that need what it found (`Scenario.expect`, `Scenario.explain`): the
    builder passes its values to them explicitly; no suite keeps module state."""
    oracle: Oracle = always_allow
    """The expectation as a pure function of the case (used when the scenario brings no
    `expect`)."""
    slice_by: Key = region_pair
    """Which slice a case belongs to; tests are parametrized by the same keys."""
    requires: tuple[Requirement, ...] = ()
    cause: Callable[[Sequence[Case]], str | None] = likely_cause
    """A hint read from every case of the whole measurement: a pure function of the cases.
    A cause that needs what the setup found (a cluster's DNS pods, the topology's overlaps)
    comes with the scenario instead (`Scenario.explain`, closing over the builder's values).
    Either is computed once, in the process that measured, into `Result.hint`: every xdist
    worker reports the same text."""
    tables: Callable[[Result, Topology], list[Table]] = field(default=lambda _r, _t: [])
    """Matrices of the whole measurement, attached once to the report."""
    refine: Callable[[Scenario, Oracle, Result], Result] | None = None
    """A second judgement over the whole result (it may re-probe): loss per region pair,
    path-MTU search; with `converges`, it judges every round before convergence is."""
    converges: bool = False
    """Re-probe failures until the expectation held on `probe.converge_rounds` consecutive
    rounds or `timeouts.converge` ends (for what the cluster programs asynchronously after
    the API says ready: Service rules, policies, DNS)."""
    smoke: Selector | None = None
    """The cases the `smoke` profile keeps (`netconform.profiles`); None: the whole check."""
    alone: bool = False
    """Measured while no other check probes (its figures are timings: RTTs, loss), when
    checks are measured at once (`--parallel-checks`)."""
    cost: int = 1
    """Roughly how long its measure takes against a one-shot check's (the stars demo's steps
    about 10): checks measured at once start with the costliest."""
    param: str = ""
    """The parametrization key its tests take, one of `PARAMETERS` (`verify` fails a test
    that names another); "" for a check with keys of its own (routes, steps)."""

    def __post_init__(self) -> None:
        if self.param and self.param not in PARAMETERS:
            known = ", ".join(PARAMETERS)
            raise NetconformError(f"check {self.id}: param {self.param!r}: one of {known}")

    def wrong_param(self, given: Iterable[str]) -> str:
        """Why a test whose parameters are `given` cannot verify this check ("" when it can)."""
        if not self.param or self.param in given:
            return ""
        return (
            f"check {self.id} is parametrized by {self.param} "
            f"({PARAMETERS[self.param]}): name the test's parameter {self.param}"
        )

    def unmet(self, env: Environment) -> str:
        """The reason of the first unmet requirement ("" when all are met)."""
        return next((r.reason for r in self.requires if not r.met(env)), "")

    def run(self, env: Environment, profile: str = FULL) -> Result:
        """Build the scenario (the profile's subset of it), probe, judge every case."""
        from netconform.scenario import measure

        converge = env.topology.timeouts.converge if self.converges else 0.0
        scenario = without_overlaps(self.scenario(env), env.topology)
        if profile == SMOKE:
            scenario = smoke_settings(self.smoke(scenario) if self.smoke else scenario)
        own = scenario.unsupported

        def unsupported(src: Endpoint, probe: Probe) -> str:
            return own(src, probe) or env.unsupported(src, probe)

        scenario = replace(scenario, unsupported=unsupported)
        oracle = scenario.expect or self.oracle
        refine = self.refine

        def judge(whole: Result) -> Result:  # before convergence is judged, every round
            return refine(scenario, oracle, whole) if refine is not None else whole

        result = measure(scenario, oracle, converge, judge)
        return replace(result, hint=self.explain(scenario, result))

    def explain(self, scenario: Scenario, result: Result) -> str:
        """The likely cause of the whole measurement ("" when nothing failed): the scenario's
        own (`explain`) or the check's."""
        if not result.failed:
            return ""
        cause = scenario.explain if scenario.explain is not None else self.cause
        return cause(result.cases) or ""

    def unsupported_slice(self, result: Result, topology: Topology, key: str) -> str:
        """Why the slice `key` is not supported ("" when it is): a region pair whose clusters
        overlap and whose every case was left out by `without_overlaps`."""
        src, arrow, dst = key.partition("->")
        if not arrow or result.slice(self.slice_by, key).cases:
            return ""
        known = {str(n) for n in topology.names}
        if src not in known or dst not in known:
            return ""
        first, second = sorted((src, dst), key=[str(n) for n in topology.names].index)
        found = between(topology, first, second)  # one wording for both directions
        return overlap_reason(found) if found else ""

    def verdict(self, result: Result, key: str, lead: Lead | None = None) -> tuple[Result, str]:
        """The slice `key` and its failure report ("" when it passed). `lead` gives the run's
        diagnosis lines for the slice's failures: they come first, then the check's own hint
        (which reads only this check's cases, and must not contradict them) and the cases."""
        part = result.slice(self.slice_by, key)
        if not part.cases and part.not_supported:
            return part, ""  # not supported as a whole: verify skips it with the reasons
        if not part.cases:
            return part, f"{key}: nothing to test (no cases in this slice)"
        if not part.failed:
            return part, ""
        lines, _ = lead(part.failed) if lead is not None else ([], False)
        return part, f"{key}: " + "\n".join([*lines, part.report(result.hint)])


def echo_probe(port: int = 80, kind: str = "http") -> Probe:
    """An HTTP request on the echo's naming path (`netconform.echo.ECHO_PATH`): the lab's
    echo and agnhost netexec both answer with their pod's name there."""
    return Probe(kind, port, params=(("path", ECHO_PATH),))


def by_cluster(expected: Mapping[str, Outcome]) -> Oracle:
    """The oracle of a check whose every destination of one cluster expects the same:
    `expected[destination.cluster]`."""

    def oracle(_src: Endpoint, dst: Endpoint, _probe: Probe) -> Outcome:
        return expected[dst.cluster]

    return oracle


def flat(pods: Mapping[str, Sequence[Endpoint]]) -> list[Endpoint]:
    """Per-cluster pods (`probe_pods`, `pods_on_every_node`) in one list, in cluster order."""
    return [p for cluster_pods in pods.values() for p in cluster_pods]


def no_cause(_cases: Sequence[Case]) -> str:
    """For checks whose scenario explains its own failures (`Scenario.explain`): no generic
    reachability hint, which their data could contradict."""
    return ""


def without_overlaps(scenario: Scenario, topology: Topology) -> Scenario:
    """Leave out every case from one cluster to an address inside a range it shares with the
    destination's cluster (seed 003: both 10.120.0.0/16): such a probe would reach the
    source's own cluster, or nothing, never the destination. Internal load balancers in a
    shared network, and anything else outside the overlap, stay in."""
    names = [str(n) for n in topology.names]
    found = {(a, b): between(topology, a, b) for a in names for b in names}
    if not any(found.values()):
        return scenario
    include = scenario.include

    def reachable(src: Endpoint, dst: Endpoint) -> bool:
        shared = found.get((src.cluster, dst.cluster), [])
        return include(src, dst) and not in_overlap(dst.ip, shared)

    return replace(scenario, include=reachable)


def load_manifest(path: Path) -> dict[str, Any]:
    """One Kubernetes object from a YAML file beside a check."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "kind" not in data:
        raise NetconformError(f"{path}: expected one Kubernetes object")
    return data


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """Every object of a multi-document YAML file beside a check."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not docs or not all(isinstance(d, dict) and "kind" in d for d in docs):
        raise NetconformError(f"{path}: expected Kubernetes objects")
    return docs
