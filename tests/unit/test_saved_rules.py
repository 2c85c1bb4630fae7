"""The lab's cloud view reads a router's FORWARD as a packet meets it: jumped-to chains inlined."""

from __future__ import annotations

from provisioning.lab.saved_rules import SavedTable

SAVE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LAB-FIREWALL - [0:0]
:LAB-PEERING - [0:0]
-A FORWARD -o p2 -m statistic --mode random --probability 0.3000 -j DROP
-A FORWARD -j LAB-FIREWALL
-A FORWARD -j LAB-PEERING
-A LAB-FIREWALL -s 10.101.0.0/16 -d 10.102.0.0/16 -p tcp -m tcp --dport 9092 -j DROP
-A LAB-FIREWALL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A LAB-FIREWALL -d 10.102.0.0/16 -i p+ -p tcp -m tcp --dport 22 -j DROP
-A LAB-FIREWALL -d 10.102.0.0/16 -i p+ -p tcp -m tcp --dport 2181 -j RETURN
-A LAB-FIREWALL -s 10.101.0.0/16 -d 10.102.0.0/16 -i p+ -p tcp -m tcp --dport 2181 -j DROP
-A LAB-PEERING -s 10.102.0.0/16 -j ACCEPT
-A LAB-PEERING -d 10.102.0.0/16 -m comment --comment "typed by hand" -j ACCEPT
-A LAB-PEERING -j RETURN
-A LAB-PEERING -j DROP
COMMIT
"""


def test_forward_is_walked_with_its_chains_inlined_and_returns_honoured() -> None:
    walked = [r.describe() for r in SavedTable.parse(SAVE).walk("FORWARD")]
    assert walked == [
        "FORWARD rule 1 (-o p2 -m statistic --mode random --probability 0.3000 -j DROP)",
        "LAB-FIREWALL rule 1 (-s 10.101.0.0/16 -d 10.102.0.0/16 -p tcp -m tcp --dport 9092 "
        "-j DROP)",
        # rule 2, a RETURN for replies, decides nothing for a new connection
        "LAB-FIREWALL rule 3 (-d 10.102.0.0/16 -i p+ -p tcp -m tcp --dport 22 -j DROP)",
        # rule 5 is hidden by rule 4's RETURN (it covers it); rule 4 itself decides nothing
        "LAB-PEERING rule 1 (-s 10.102.0.0/16 -j ACCEPT)",
        "LAB-PEERING rule 2 (-d 10.102.0.0/16 -m comment --comment typed by hand -j ACCEPT)",
        # a match-less RETURN: rule 4 is never reached
    ]


def test_plain_matches_ignore_comments_and_refuse_other_matches() -> None:
    rules = SavedTable.parse(SAVE).chains
    assert rules["LAB-PEERING"][1].matches() == {"-d": "10.102.0.0/16"}
    assert rules["FORWARD"][0].matches() is None
    assert rules["LAB-FIREWALL"][0].matches() == {
        "-s": "10.101.0.0/16", "-d": "10.102.0.0/16", "-p": "tcp", "--dport": "9092",
    }  # fmt: skip
