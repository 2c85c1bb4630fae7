"""A CoreDNS pod's server as a process of its own (`dns.worker`, `dns.process.PodProcess`): it
serves UDP and TCP port 53 inside its network namespace from what the daemon pushes, follows
pushed changes of objects and of the `dns-down` flag, and is gone by its exact pid when closed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

from netconform.corefile import parse_corefile
from provisioning.lab.dns.process import PodProcess, config_frame, kube_objects, objects_frame
from provisioning.lab.dns.worker import Snapshot
from provisioning.lab.nsenter import in_netns
from tests.lab.scratch import eventually, scratch_netns

COREFILE = """cluster.local:53 {
    kubernetes cluster.local {
        pods insecure
    }
}
"""
NETNS = f"nctdnsproc{os.getpid()}"
PUSH_APPLIED = 5.0
"""Seconds for a pushed frame to reach the worker (a pipe write; generous for a busy machine)."""


def service(name: str, ip: str) -> dict[str, Any]:
    meta = {"namespace": "web", "name": name, "uid": "u"}
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}]
    return {"metadata": meta, "spec": {"clusterIP": ip, "ports": ports}}


class FakeStore:
    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    def select(self, res: Any, _namespace: str | None) -> list[dict[str, Any]]:
        return self.objects.get(res.kind, [])


@pytest.fixture
def netns() -> Iterator[str]:
    with scratch_netns(NETNS) as name:
        yield name


def test_kube_objects_keep_what_the_plugin_reads() -> None:
    pod = {
        "metadata": {"namespace": "web", "name": "p", "labels": {"a": "b"}},
        "spec": {"containers": []},
        "status": {"podIP": "10.0.0.5", "phase": "Running"},
    }
    pending = {"metadata": {"namespace": "web", "name": "q"}, "status": {}}
    eps = {
        "metadata": {"namespace": "web", "name": "s", "resourceVersion": "7"},
        "subsets": [{"addresses": [{"ip": "10.0.0.5", "targetRef": {}}], "ports": []}],
    }
    got = kube_objects(FakeStore({"Pod": [pod, pending], "Endpoints": [eps], "Service": []}))
    assert got["Pod"] == [{"metadata": {"namespace": "web", "name": "p"},
                           "status": {"podIP": "10.0.0.5"}}]  # fmt: skip
    assert got["Endpoints"][0]["subsets"] == [{"addresses": [{"ip": "10.0.0.5"}]}]


async def ask(name: str, rdtype: str = "A", tcp: bool = False, timeout: float = 2.0) -> Any:
    query = dns.message.make_query(name, rdtype)
    with in_netns(NETNS):
        if tcp:
            return await dns.asyncquery.tcp(query, "127.0.0.1", timeout=timeout)
        return await dns.asyncquery.udp(query, "127.0.0.1", timeout=timeout)


def test_a_pod_process_serves_follows_pushes_and_stops(netns: str) -> None:
    async def scenario() -> None:
        logs: list[str] = []
        server = PodProcess(netns, "127.0.0.1", logs.append, lambda *_: None)
        procs: set[asyncio.subprocess.Process] = set()
        blocks = parse_corefile(COREFILE)
        objects = {"Service": [service("echo", "10.96.0.7")], "Endpoints": [], "Pod": []}

        def first() -> bytes:
            snapshot = Snapshot(blocks, (), False, 1)
            return objects_frame(objects) + config_frame(snapshot, reload=False)

        await server.start(first, procs)
        pid = server.pid
        assert pid and procs
        try:
            name = "echo.web.svc.cluster.local"
            for tcp in (False, True):
                reply = await ask(name, tcp=tcp)
                assert [r.to_text() for r in reply.answer[0]] == ["10.96.0.7"]
            nodata = await ask(name, "AAAA")
            assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
            srv = await ask(f"_http._tcp.{name}", "SRV")
            assert "80 echo.web.svc.cluster.local." in srv.answer[0].to_text()
            missing = await ask("other.web.svc.cluster.local")
            assert missing.rcode() == dns.rcode.NXDOMAIN
            objects["Service"].append(service("other", "10.96.0.8"))
            server.send(objects_frame(objects))

            async def other_found() -> bool:
                found = await ask("other.web.svc.cluster.local")
                return bool(found.answer) and found.answer[0][0].to_text() == "10.96.0.8"

            await eventually(other_found, PUSH_APPLIED, "PUSH_APPLIED (a new Service)")
            server.send(config_frame(Snapshot(blocks, (), True, 1), reload=False))

            async def silent() -> bool:
                try:
                    await ask(name, timeout=0.3)
                except dns.exception.Timeout:
                    return True
                return False

            await eventually(silent, PUSH_APPLIED, "PUSH_APPLIED (dns-down)")
            assert not any("Traceback" in line for line in logs)
        finally:
            server.close()
            await server.wait(5.0)
        assert server.proc is not None and server.proc.returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: this exact pid is gone

    asyncio.run(scenario())
