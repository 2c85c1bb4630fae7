"""Owner markers: prefixes per state dir, namespaces split by who made them."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.lab import control, ownership


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ownership, "NETNS_MARKERS", tmp_path / "netns")
    monkeypatch.setattr(ownership, "PREFIX_CLAIMS", tmp_path / "prefixes")
    return tmp_path


def test_default_prefix_is_stable_per_state_dir_and_differs_between_clones(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "a" / ".lab", tmp_path / "b" / ".lab"
    assert ownership.default_prefix(one) == ownership.default_prefix(one)
    assert ownership.default_prefix(one) != ownership.default_prefix(two)
    control.check_prefix(ownership.default_prefix(one))  # a valid lab prefix


def test_namespaces_split_by_their_maker(markers: Path) -> None:
    ownership.mark(["p-world", "p-east-rtr"], "/clone/a/.lab")
    ownership.mark(["p-west-rtr"], "/clone/b/.lab")
    own, others = ownership.split_by_owner(
        ["p-world", "p-east-rtr", "p-west-rtr", "p-stray"], "/clone/a/.lab"
    )
    assert own == ["p-world", "p-east-rtr"]
    assert others == {"/clone/b/.lab": ["p-west-rtr"], None: ["p-stray"]}
    text = ownership.describe_others("p", others)
    assert "1 of the lab of state dir /clone/b/.lab (daemon gone): p-west-rtr" in text
    assert "1 of no lab's (no owner marker): p-stray" in text
    ownership.unmark(["p-world"])
    assert ownership.owner_of("p-world") is None


def test_a_claim_of_a_dead_daemon_is_taken_over(markers: Path) -> None:
    ownership.claim("p", "/clone/a/.lab", pid=2**22 + 1)  # no such process
    ownership.claim("p", "/clone/b/.lab", pid=0)
    held = ownership.read_claim("p")
    assert held is not None and held.state_dir == "/clone/b/.lab"
    assert ownership.claimed_by("/clone/b/.lab") == "p"
    ownership.release("p", "/clone/a/.lab")  # not a's to release
    assert ownership.read_claim("p") is not None
    ownership.release("p", "/clone/b/.lab")
    assert ownership.read_claim("p") is None
