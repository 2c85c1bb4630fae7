"""`netconform-lab`: up, down, status, shell, fault, heal.

Errors print one line and exit with the error's own code (see netconform.errors).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path

from netconform.errors import NetconformError
from netconform.topology import Timeouts
from provisioning.lab import control, layouts
from provisioning.lab.control import LabPaths
from provisioning.lab.owned_chains import SYNC_PERIOD

FAULTS_HELP = """faults:
  cut-peering A B      blackhole the routes between regions A and B (both ways)
  blackhole-pod POD    drop all traffic to POD on its node (POD: cluster/name or name)
  transit SRC DST VIA  SRC's router sends traffic for DST's VPC over its peering with VIA;
                       peering is not transitive, so VIA drops it: SRC<->DST pairs fail
  policy-off CLUSTER   NetworkPolicy enforcement stops in CLUSTER (its rules flushed)
  stub-missing CLUSTER ZONE   CLUSTER's DNS forgets its stub zone ZONE (west.svc.cluster.local)
  stub-self CLUSTER    CLUSTER's stub zones forward to its own DNS: the loop plugin halts it
  dns-down CLUSTER     CLUSTER's DNS pods receive queries and never answer
  lb-down C/NS/SVC     the Service's load balancer stops answering (router and nodes drop it)
  lb-stale C/NS/SVC    the cloud drops the status address (in-cluster kube-proxy still answers)
  nodeport-off NODE    nothing answers on NODE's NodePorts (30000-32767)
  firewall-close A B PORT  the firewall drops TCP PORT between A's and B's pod subnets
  loss A B PERCENT     A's router drops PERCENT of what it sends to B (iptables statistic)
  mtu A B BYTES        the A<->B link's MTU is BYTES and no fragmentation-needed comes back
  icmp-drop A B        ICMP between A's and B's pod subnets dropped (TCP still passes)
  snat A B             A's router masquerades its pods' traffic to B (source address lost)
  policy-extra-deny CLUSTER/NS
                       a deny-all NetworkPolicy (ingress and egress) in NS, made through the
                       API; heal deletes it
  ingress-down CLUSTER nginx stops in CLUSTER's ingress controller pods (they go not ready)
  canary-skew CLUSTER/NS/ING WEIGHT
                       the controller serves that canary Ingress with WEIGHT, not its annotation
  redirect-off CLUSTER no HTTPS redirect anywhere in CLUSTER's ingress controller
  wrong-cert CLUSTER HOST    HOST is served another host's certificate
  expired-cert CLUSTER HOST  HOST is served an expired certificate with its own names
  ingress-stale CLUSTER      CLUSTER's ingress controller stops applying configuration changes
  gateway-snat CLUSTER off|on  (overlap layout) CLUSTER's gateway source-NATs into the shared
                       network, or not (seed 003: off, the other cluster routes replies to
                       its own copy of the overlapping range)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netconform-lab",
        description="The embedded multi-region lab: clusters as network namespaces on this "
        "machine, each with a Kubernetes API on loopback.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=FAULTS_HELP,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=control.DEFAULT_STATE_DIR,
        help="where state.json, kubeconfig and topology.yaml live "
        f"(default {control.DEFAULT_STATE_DIR})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and start its API servers")
    up.add_argument("--regions", type=int, default=3, help="number of regions (default 3)")
    up.add_argument(
        "--layout",
        choices=layouts.LAYOUTS,
        default="default",
        help="default: peered regions; overlap: seed 003, clusters c1 and c2 with the same "
        "pod CIDR joined only by a shared network of internal LoadBalancers",
    )
    up.add_argument(
        "--prefix",
        default=None,
        help="name prefix of every namespace the lab creates (default: n + 6 hex digits "
        "derived from the state dir's path, so two clones never collide)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=Timeouts.lab_up,
        help=f"lab_up timeout in seconds (default {Timeouts.lab_up:g})",
    )
    up.add_argument(
        "--sync-period",
        type=_sync_period,
        default=SYNC_PERIOD,
        help="seconds between kube-proxy's full resyncs, which repair its KUBE-* chains "
        f"(default {SYNC_PERIOD:g}; upstream's syncPeriod defaults to 30)",
    )
    down = sub.add_parser(
        "down",
        help="remove everything this state dir's lab made (its namespaces, links and "
        "processes; its state, kubeconfig and topology files); other labs' are left alone",
    )
    down.add_argument(
        "--prefix",
        default=None,
        help="the prefix to sweep when no daemon runs and no state says it (default: the "
        "state dir's own)",
    )
    sub.add_parser("status", help="regions, API ports, pods and active faults")
    shell = sub.add_parser("shell", help="a shell (or command) inside a lab namespace")
    shell.add_argument(
        "target", help="world, shared (overlap layout), REGION (its router), NODE, or POD"
    )
    shell.add_argument("cmd", nargs=argparse.REMAINDER, help="command (default: $SHELL)")
    fault = sub.add_parser("fault", help="break something on purpose (see below)")
    fault.add_argument("name")
    fault.add_argument("args", nargs="*")
    sub.add_parser("heal", help="undo every active fault")
    return parser


def _sync_period(word: str) -> float:
    """argparse type: a period between 0.5 and 3600 seconds (a usage error otherwise)."""
    try:
        value = float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {word!r}") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.5 and 3600 seconds, got {word}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = LabPaths(args.state_dir)
    try:
        return _dispatch(args, paths)
    except NetconformError as err:
        print(f"netconform-lab: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, paths: LabPaths) -> int:
    command: str = args.command
    if command == "up":
        state = control.up(
            paths,
            regions=args.regions,
            prefix=args.prefix,
            timeout=args.timeout,
            progress=print,
            layout=args.layout,
            sync_period=args.sync_period,
        )
        for region, port in state["api_ports"].items():
            print(f"  lab-{region}: http://127.0.0.1:{port}")
        first = next(iter(state["api_ports"]))
        print(
            f"topology: {paths.topology}\n"
            f"try: kubectl --kubeconfig {paths.kubeconfig} --context lab-{first} get nodes"
        )
    elif command == "down":
        control.require_root()
        print(control.down(paths, prefix=args.prefix).summary())
    elif command == "status":
        _status(paths)
    elif command == "shell":
        query = urllib.parse.urlencode({"name": args.target})
        netns = control.call(paths, "GET", f"/netns?{query}")["netns"]
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        cmd = cmd or [os.environ.get("SHELL", "/bin/sh")]
        os.execvp("ip", ["ip", "netns", "exec", netns, *cmd])
    elif command == "fault":
        result = control.call(paths, "POST", "/fault", {"name": args.name, "args": args.args})
        print(f"fault applied: {result['applied']}")
    elif command == "heal":
        healed = control.call(paths, "POST", "/heal", {})["healed"]
        print(f"healed: {', '.join(healed) if healed else 'nothing was broken'}")
    return 0


def _status(paths: LabPaths) -> None:
    state = control.read_state(paths)
    if state is None:
        print(f"no lab running for {paths.root}")
        return
    status = control.call(paths, "GET", "/status")
    print(
        f"lab running: pid {state['pid']}, prefix {state['prefix']}, kubeconfig {paths.kubeconfig}"
    )
    for region, port in state["api_ports"].items():
        pods = [p for p in status["pods"] if p["cluster"] == region]
        print(f"  {region:<10} lab-{region} http://127.0.0.1:{port}  {len(pods)} pod(s)")
    faults = status["faults"]
    print(f"faults: {', '.join(faults) if faults else 'none'}")


if __name__ == "__main__":
    sys.exit(main())
