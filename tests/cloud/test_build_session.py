"""`pytest suites --build`: the session builds the topology's clusters (moto on loopback),
the suites run against what was built, and the session's end destroys it by its run id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from fixtures import build as session_build
from netconform.errors import UsageError
from provisioning import aws_creates
from provisioning.aws_build import AwsBuilder
from tests.cloud.conftest import session, tagged, topology_file

ROOT = Path(__file__).resolve().parents[2]


def suites(moto: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The cloud suite as a user runs it, in its own process; boto3 pointed at moto."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    cmd = [sys.executable, "-m", "pytest", "suites/cloud", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_build_runs_the_suites_on_what_it_built_then_destroys_it(aws: str, tmp_path: Path) -> None:
    topo = topology_file(tmp_path)
    done = suites(aws, "--build", "--topology", str(topo), "--run-id", "nc-sess-1", "-q")
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "netconform: build: run id: nc-sess-1" in text
    assert "netconform: build: build plan: 36 to create" in text
    assert "42 passed" in text and " FAILED" not in text
    assert "netconform: built clusters destroyed (run nc-sess-1: destroyed 33 resources)" in text
    assert tagged(session()) == []


def test_keep_built_leaves_it_for_destroy_by_run_id(aws: str, tmp_path: Path) -> None:
    topo = topology_file(tmp_path)
    done = suites(aws, "--build", "--keep-built", "--topology", str(topo), "--run-id", "nc-k-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "destroyed" not in done.stdout
    # per region a VPC, 2 subnets, a group, 2 peerings; 3 clusters; 6 roles
    assert len(tagged(session())) == 3 * (1 + 2 + 1 + 2) + 3 + 6
    from provisioning import cli

    regions = [arg for r in ("ca-central-1", "us-east-2", "us-west-2") for arg in ("--region", r)]
    assert cli.main(["destroy", "--run-id", "nc-k-1", *regions], None, session()) == 0
    assert tagged(session()) == []


def test_build_needs_a_topology(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--build: give --topology FILE"):
        session_build.build_session(None, "nc-x", tmp_path, yes=False)


def test_ctrl_c_while_the_session_builds_destroys_what_was_made(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    real = aws_creates._create_sg

    def then_sigint(self: AwsBuilder, c: Any) -> Any:
        made = real(self, c)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between this create and the next
        return made

    monkeypatch.setattr(aws_creates, "_create_sg", then_sigint)
    with pytest.raises(KeyboardInterrupt):
        session_build.build_session(str(topology_file(tmp_path)), "nc-int-1", tmp_path, yes=False)
    assert tagged(boto3.Session(region_name="us-east-1")) == []
