"""`netconform-report`: outcome files outside a run.

    netconform-report diff BEFORE.json AFTER.json [--topology FILE]   exit 1 on regressions
    netconform-report validate FILE...                                 against the schema
    netconform-report schema                                           the schema's path

Bad input is one line on stderr with its own exit code: 12 a baseline of another topology
or profile, 13 an unreadable or invalid outcome file (or an unknown schema version), 3 a bad
topology file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netconform.errors import NetconformError
from netconform.topology import Drift, load_topology
from reports import baseline, outcome


def diff(before: Path, after: Path, topology: str | None) -> int:
    old, new = outcome.read(before), outcome.read(after)
    baseline.check_comparable(old, new["topology"]["digest"], new["profile"], str(before))
    limits = load_topology(topology).drift if topology else Drift()
    result = baseline.compare(old, new, limits, str(before))
    for line in result.lines():
        print(line)
    return 1 if result.regressions else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="netconform-report", description="netconform outcome files: diff, validate"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("diff", help="regressions, fixed, new and drift from BEFORE to AFTER")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    d.add_argument("--topology", help="topology file whose drift: thresholds apply")
    v = commands.add_parser("validate", help="check outcome files against the schema")
    v.add_argument("files", type=Path, nargs="+")
    commands.add_parser("schema", help="print the path of the published JSON Schema")
    args = parser.parse_args(argv)
    try:
        if args.command == "diff":
            return diff(args.before, args.after, args.topology)
        if args.command == "validate":
            for path in args.files:
                doc = outcome.read(path)
                cases = sum(len(c["cases"]) for c in doc["checks"])
                print(f"{path}: valid, schema version {doc['schema_version']}, {cases} case(s)")
            return 0
        print(outcome.SCHEMA_PATH)
        return 0
    except NetconformError as err:
        print(f"netconform-report: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
