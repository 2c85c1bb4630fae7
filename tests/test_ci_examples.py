"""The CI examples (examples/ci/) are linted against the GitHub Actions workflow and GitLab CI
schemas that check-jsonschema vendors (offline), and a broken workflow is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netconform.topology import load_topology

REPO = Path(__file__).resolve().parents[1]
CI = REPO / "examples" / "ci"


def lint(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_github_workflows_validate() -> None:
    workflows = sorted((CI / "github").glob("*.yml"))
    assert [w.name for w in workflows] == ["gating.yml", "nightly.yml"]
    run = lint("vendor.github-workflows", *workflows)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_gitlab_pipeline_validates() -> None:
    run = lint("vendor.gitlab-ci", CI / "gitlab" / ".gitlab-ci.yml")
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("schema", "source", "break_it"),
    [
        ("vendor.github-workflows", "github/nightly.yml", ("runs-on:", "runs_on:")),
        ("vendor.gitlab-ci", "gitlab/.gitlab-ci.yml", ("policy: pull-push", "policy: sometimes")),
    ],
    ids=["github-workflow", "gitlab-ci"],
)
def test_a_broken_copy_is_caught(
    tmp_path: Path, schema: str, source: str, break_it: tuple[str, str]
) -> None:
    broken = tmp_path / Path(source).name
    shutil.copy(CI / source, broken)
    broken.write_text(broken.read_text().replace(*break_it))
    assert lint(schema, broken).returncode != 0


def test_the_examples_topology_loads() -> None:
    topology = load_topology(CI / "topology.yaml")
    assert topology.names == ("central", "east", "west") and topology.drift.rtt_ms == 10
