"""`netconform-cloud plan|apply|audit|build|destroy --topology FILE [--cloud C] [--dry-run]`.

plan prints what would change; apply prints the plan, then makes it (or only prints it with
--dry-run); audit runs the read-only preflight checks. Errors are one line on stderr with
the error's exit code; audit failures exit 1; clouds without credentials are reported as
not supported. build and destroy make and remove the clusters themselves
(provisioning.build_cli).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from netconform.cloudaudit import run_all
from netconform.errors import NetconformError
from netconform.topology import Topology, load_topology
from provisioning.cloud import (
    AUDITED_CLOUDS,
    Change,
    check_overlaps,
    credentials_problem,
    print_plan,
)
from provisioning.providers import provider_for

if TYPE_CHECKING:
    import boto3

PROG = "netconform-cloud"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plan", "print what apply would change"),
        ("apply", "print the plan, then make it"),
        ("audit", "read-only preflight checks"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--topology", required=True, help="topology YAML file")
        cmd.add_argument(
            "--cloud",
            choices=AUDITED_CLOUDS,
            action="append",
            help="only this cloud (repeatable; default: every cloud named)",
        )
        if name == "apply":
            cmd.add_argument("--dry-run", action="store_true", help="print only the plan")
    from provisioning import build_cli  # boto3 loads for build and destroy only

    build_cli.add_parsers(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    session: boto3.Session | None = None,
) -> int:
    """`session`: the boto3 session build and destroy use (default: boto3's own)."""
    from provisioning import build_cli

    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    run = build_cli.BuildRun()
    try:
        if args.command == "build":
            return build_cli.build(args, out, run, session)
        if args.command == "destroy":
            return build_cli.destroy(args, out, session)
        topology = load_topology(args.topology)
        clouds = _clouds(topology, args.cloud)
        if args.command == "audit":
            return audit(topology, clouds, out)
        return plan_and_apply(topology, clouds, args.command == "apply" and not args.dry_run, out)
    except NetconformError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        hint = (
            f": what run {run.run_id} made so far goes with `{PROG} destroy --run-id "
            f"{run.run_id} --topology {args.topology}`"
            if run.run_id
            else ""
        )
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130


def _clouds(topology: Topology, wanted: list[str] | None) -> list[str]:
    named = [c for c in AUDITED_CLOUDS if any(k.cloud == c for k in topology.clusters)]
    return [c for c in named if not wanted or c in wanted]


def plan_and_apply(topology: Topology, clouds: list[str], apply: bool, out: TextIO) -> int:
    """Refuse overlaps, print every cloud's plan, then apply each (unless only planning)."""
    check_overlaps(topology)
    if not clouds:
        print("nothing to do: no cluster names aws, gcp or azure", file=out)
        return 0
    providers = [provider_for(cloud, topology) for cloud in clouds]
    plans: list[list[Change]] = []
    for provider in providers:
        plans.append(provider.plan())
        print_plan(plans[-1], out)
    if not apply:
        return 0
    for provider, plan in zip(providers, plans, strict=True):
        report = provider.apply(plan, out)
        print(f"{provider.cloud}: {report.summary()}", file=out)
    return 0


def audit(topology: Topology, clouds: list[str], out: TextIO) -> int:
    """Run every check per cloud; print failures with their findings; 1 if any failed."""
    failed = passed = 0
    for cloud in clouds:
        problem = credentials_problem(cloud)
        if problem:
            print(f"{cloud}: not supported: {problem}", file=out)
            continue
        snap = provider_for(cloud, topology).snapshot()
        for case, findings in run_all(snap, topology.required_ports):
            if findings:
                failed += 1
                print(f"FAIL {case.kind} {case.id}", file=out)
                for finding in findings:
                    print(f"     {finding.message}", file=out)
            else:
                passed += 1
    print(f"audit: {passed} passed, {failed} failed", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
