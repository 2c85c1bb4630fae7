"""`netconform-kube plan|apply [--dry-run] --topology F`: seed 000's DNS glue as code.

Per cluster: the `kube-dns-lb` LoadBalancer Service in kube-system (internal, the usual AWS,
GCP and Azure annotations), a wait for its address (named timeout `lb_ready`, a progress
line), then stub domains for every OTHER cluster's zone -> that cluster's DNS address, never
its own. CoreDNS clusters (a `coredns` ConfigMap) get Corefile server blocks; kube-dns
clusters get `stubDomains`. Idempotent: a second apply reports no changes.

`--dns-endpoint pods` (flat pod networks without LoadBalancers): a cluster's DNS address is its
ready kube-dns endpoints (pod IPs, flat-routed across peered VPCs) instead of the LB's.
Bad input is one line naming the cluster and ConfigMap or Service, with its own exit code:
11 for a Corefile or stubDomains that does not parse, 10 for an LB that never gets an address.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from netconform.dnsglue import LB_READY, run
from netconform.errors import NetconformError
from netconform.topology import load_topology

PROG = "netconform-kube"


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("plan", "apply"))
    parser.add_argument("--topology", required=True)
    parser.add_argument("--dry-run", action="store_true", help="apply: print the plan only")
    parser.add_argument(
        "--dns-endpoint",
        choices=("lb", "pods"),
        default="lb",
        help="what other clusters forward to: the kube-dns-lb address "
        "(default) or the DNS pods' IPs (flat pod networks)",
    )
    parser.add_argument("--lb-timeout", type=float, default=LB_READY, help="lb_ready seconds")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        topology = load_topology(args.topology)
        apply = args.command == "apply" and not args.dry_run
        return run(topology, apply, args.dns_endpoint, out, args.lb_timeout)
    except NetconformError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
