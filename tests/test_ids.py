"""Every parametrized value of the whole collected suite reads as an id, in pytest's node ids
and in the report's parameters (Allure shows `repr`, quoting every str): `lab:east->west:9092`,
never `AuditCase(kind='port', ...)` or `'east/step-2-default-deny'`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: a readable id: words, regions and ports joined by `->`, `:`, `/`, `.`, `-`, `@`
READABLE = re.compile(r"^[A-Za-z0-9][\w.:/@<>-]*$")


def collected(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    out = tmp_path / "ids.json"
    env = {**os.environ, "NETCONFORM_IDS_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.idsdump",
         "--collect-only", "-q", "suites", "--lab-dir", str(tmp_path / "no-lab"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows: list[dict[str, object]] = json.loads(out.read_text())
    return rows


@pytest.mark.parametrize(
    "args",
    [(), ("--topology", "examples/mrc-clouds.yaml"), ("--lab-regions", "9")],
    ids=["lab", "clouds", "lab-9-regions"],
)
def test_every_parameter_of_the_whole_suite_reads_as_an_id(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    rows = collected(tmp_path, *args)
    assert len(rows) > 40
    unreadable = [
        (row["nodeid"], name, shown)
        for row in rows
        for name, shown in dict(row["params"]).items()  # type: ignore[call-overload]
        if not READABLE.fullmatch(str(shown))
    ]
    assert unreadable == []
    ids = [str(row["nodeid"]).partition("[")[2].rstrip("]") for row in rows]
    assert all(READABLE.fullmatch(i) for i in ids if i), [
        i for i in ids if i and not READABLE.fullmatch(i)
    ]
    if args and args[0] == "--topology":
        assert any(":central->east:9092" in str(r["params"]) for r in rows)  # the cloud cases
