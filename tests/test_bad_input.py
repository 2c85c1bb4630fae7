"""Bad input ends a run with one line naming the problem and its own exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netconform.errors import (
    ApiUnreachableError,
    ForbiddenError,
    LabError,
    MissingToolError,
    TopologyError,
    UnknownContextError,
    UsageError,
)
from provisioning.lab.control import LabPaths

REPO = Path(__file__).resolve().parents[1]


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def pytest_suites(*args: str) -> subprocess.CompletedProcess[str]:
    return run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "suites/pod_to_pod", *args]
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if "error:" in ln]
    assert len(errors) == 1, text
    for word in words:
        assert word in errors[0], errors[0]


def kubeconfig(tmp_path: Path, server: str, context: str = "mrc-east") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


def topology(tmp_path: Path, context: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "kubeconfig": "kubeconfig",
                "clusters": [{"name": "east", "context": context, "pod_cidrs": ["10.1.0.0/16"]}],
            }
        )
    )
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_malformed_topology(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters:\n  - name: east\n    pod_cidrs: [10.300.0.0/16]\n")
    proc = pytest_suites("--topology", str(bad))
    assert_one_line(proc, TopologyError.exit_code, str(bad), "clusters[0].pod_cidrs[0]")


def test_unknown_topology_key_names_the_closest_known_one(tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text(
        "clusters:\n  - name: central\n    pod_cidrs: [10.1.0.0/16]\n"
        "  - name: east\n    contxt: mrc-east\n    pod_cidrs: [10.2.0.0/16]\n"
    )
    proc = pytest_suites("--topology", str(bad))
    assert_one_line(
        proc,
        TopologyError.exit_code,
        f"{bad}: unknown key 'contxt' in clusters[1] (line 5): did you mean 'context'?",
    )


def test_unknown_context(tmp_path: Path) -> None:
    kubeconfig(tmp_path, "http://127.0.0.1:1")
    proc = pytest_suites("--topology", str(topology(tmp_path, "mrc-nowhere")))
    assert_one_line(
        proc, UnknownContextError.exit_code, "unknown context 'mrc-nowhere'", "known: mrc-east"
    )


def test_malformed_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("clusters: [\n")
    proc = pytest_suites("--topology", str(topology(tmp_path, "mrc-east")))
    assert_one_line(proc, UnknownContextError.exit_code, "cannot read", "kubeconfig")


def test_run_id_that_is_no_label_value(tmp_path: Path) -> None:
    kubeconfig(tmp_path, "http://127.0.0.1:1")
    proc = pytest_suites("--topology", str(topology(tmp_path, "mrc-east")), "--run-id", "a,b")
    assert_one_line(proc, 2, "--run-id 'a,b'", "label value")


@pytest.mark.parametrize("value", ["exec=abc", "exec", "no_such_wait=5", "converge=0"])
def test_timeout_override_that_is_no_named_timeout(tmp_path: Path, value: str) -> None:
    kubeconfig(tmp_path, "http://127.0.0.1:1")
    proc = pytest_suites("--topology", str(topology(tmp_path, "mrc-east")), "--timeout", value)
    assert_one_line(proc, UsageError.exit_code, f"--timeout {value!r}", "expected")


def test_unreachable_api(tmp_path: Path) -> None:
    port = closed_port()
    kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
    proc = pytest_suites("--topology", str(topology(tmp_path, "mrc-east")))
    assert_one_line(
        proc,
        ApiUnreachableError.exit_code,
        "east (context mrc-east",
        f"127.0.0.1:{port}",
        "unreachable",
        "connection refused",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="building a lab needs root")
def test_missing_tool_for_the_lab(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no ip, no iptables
    proc = run(
        [
            sys.executable,
            "-m",
            "provisioning.lab",
            "--state-dir",
            str(tmp_path / "lab"),
            "up",
            "--prefix",
            "ncx",
        ],
        env=env,
    )
    assert_one_line(proc, MissingToolError.exit_code, "required tool 'ip' not found", "iproute2")


def test_lab_commands_without_a_lab(tmp_path: Path) -> None:
    proc = run(
        [
            sys.executable,
            "-m",
            "provisioning.lab",
            "--state-dir",
            str(tmp_path),
            "fault",
            "cut-peering",
            "east",
            "west",
        ]
    )
    assert_one_line(proc, LabError.exit_code, "no lab is running")


def test_forbidden_verb(lab: LabPaths, tmp_path: Path) -> None:
    """The lab's viewer user may only read: the RBAC preflight (SelfSubjectAccessReview) names
    the first verb it lacks before anything is deployed."""
    topo = yaml.safe_load(lab.topology.read_text())
    topo["kubeconfig"] = str(lab.kubeconfig)
    for cluster in topo["clusters"]:
        cluster["context"] += "-viewer"
    path = tmp_path / "viewer.yaml"
    path.write_text(yaml.safe_dump(topo))
    proc = pytest_suites("--topology", str(path), "-x")
    text = proc.stdout + proc.stderr
    assert proc.returncode == ForbiddenError.exit_code, text
    assert "Traceback" not in text
    assert "netconform: error: " in text, text
    assert "(context lab-central-viewer," in text, text
    assert "RBAC does not allow create pods in namespace central" in text, text
