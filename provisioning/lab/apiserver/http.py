"""The aiohttp application of one cluster: routing, identity, verbs, watch, exec, attach, log."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from provisioning.lab.apiserver.access import access_review, rules_review
from provisioning.lab.apiserver.attach import attach_command
from provisioning.lab.apiserver.bodies import negotiate, request_body
from provisioning.lab.apiserver.discovery import READ_VERBS, discovery_documents
from provisioning.lab.apiserver.errors import (
    ApiError,
    bad_request,
    method_not_allowed,
    not_found,
)
from provisioning.lab.apiserver.execstream import (
    V4_PROTOCOL,
    V5_PROTOCOL,
    ExecSession,
    pick_container,
    truthy,
)
from provisioning.lab.apiserver.kinds.podsecurity import WARNINGS
from provisioning.lab.apiserver.limits import MAX_BODY_BYTES, InFlight, check_length, too_large
from provisioning.lab.apiserver.model import Event, ExecHandler, LogHandler, Obj
from provisioning.lab.apiserver.objects import labels_of, now
from provisioning.lab.apiserver.patches import apply_patch
from provisioning.lab.apiserver.routing import (
    Target,
    bearer_token,
    forbidden,
    json_response,
    parse_target,
    strip_secret,
    strip_viewer_prefix,
    success_status,
    verb_of,
)
from provisioning.lab.apiserver.selectors import (
    FieldTerm,
    Selector,
    fields_match,
    parse_field_selector,
    parse_label_selector,
    selector_matches,
)
from provisioning.lab.apiserver.ssa import APPLY_PATCH, apply_body, field_manager
from provisioning.lab.apiserver.store import Store
from provisioning.lab.apiserver.tables import as_table, wants_table

log = logging.getLogger("netconform.lab.apiserver")
WATCH_LIVENESS_S = 1.0
"""How often a quiet watch checks that its client is still there (a vanished client's watch
is closed within this, not at its timeoutSeconds or at the next event)."""
PORT_FORWARD_UNSUPPORTED = (
    "port-forward is not supported by the netconform lab API server (pods live in the lab's "
    "network namespaces: reach them with kubectl exec, or from the host with "
    "`netconform-lab shell POD`)"
)


class ClusterApi:
    """The aiohttp application serving one cluster's store."""

    def __init__(
        self, store: Store, exec_handler: ExecHandler, log_handler: LogHandler | None
    ) -> None:
        self.store = store
        self.exec_handler = exec_handler
        self.log_handler = log_handler
        self.port = 0
        self._streams: set[web.StreamResponse] = set()
        self._docs: dict[str, Obj] = {}
        self.inflight = InFlight()
        self.served = 0
        """Requests answered (any status), for the load figures."""

    def application(self) -> web.Application:
        """The aiohttp app (one catch-all route)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[negotiate])
        app.router.add_route("*", "/{path:.*}", self.handle)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        for stream in list(self._streams):
            if isinstance(stream, web.WebSocketResponse):
                await stream.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Every request: identity, the in-flight limits and the body limit (as upstream's
        filters, in that order), static documents, then resources; errors become Status
        objects."""
        self.served += 1
        try:
            self._authenticate(request)
            with self.inflight.admit(request):
                check_length(request)
                return await self._dispatch(request)
        except ApiError as err:
            response = json_response(err.status(), err.code)
            if err.code == 429:
                response.headers["Retry-After"] = "1"
            return response
        except web.HTTPRequestEntityTooLarge:  # a chunked body that outgrew the limit
            return json_response(too_large().status(), 413)
        except Exception as exc:
            path = strip_secret(request.path, self.store.spec.secret)[0]  # never log the secret
            log.exception("%s: %s %s failed", self.store.name, request.method, path)
            return json_response(ApiError(500, "InternalError", repr(exc)).status(), 500)

    def _authenticate(self, request: web.Request) -> None:
        secret = self.store.spec.secret
        _, known = strip_secret(request.path.rstrip("/") or "/", secret)
        if not known and bearer_token(request) != secret:
            raise ApiError(401, "Unauthorized", "Unauthorized: the lab's kubeconfig is needed")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path, _ = strip_secret(request.path.rstrip("/") or "/", self.store.spec.secret)
        path, viewer = strip_viewer_prefix(path)
        viewer = viewer or bearer_token(request) == self.store.spec.viewer_token
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if not self._docs:
            self._docs = discovery_documents(self.port)
        if path in self._docs:
            return json_response(self._docs[path])
        target = parse_target(path)
        verb = verb_of(request.method, target, request.query)
        if target.res.review:
            return await self._review(request, target, verb, viewer)
        if viewer and verb not in (*READ_VERBS, "log"):
            raise forbidden(target, verb, "viewer")
        handler = getattr(self, f"_do_{verb}")
        pending: list[str] = []
        token = WARNINGS.set(pending)
        try:
            response = await self._run(request, handler, target, verb)
        finally:
            WARNINGS.reset(token)
        if pending and not response.prepared:
            for text in pending:
                escaped = text.replace("\\", "\\\\").replace('"', '\\"')
                response.headers.add("Warning", f'299 - "{escaped}"')
        return response

    async def _run(
        self, request: web.Request, handler: Any, target: Target, verb: str
    ) -> web.StreamResponse:
        if verb in ("create", "update", "patch", "delete", "deletecollection") and (
            "All" in request.query.getall("dryRun", [])
        ):
            await request.read()  # cached: the handler's read() then never waits
            with self.store.dry_run():
                response: web.StreamResponse = await handler(request, target)
            return response
        response = await handler(request, target)
        return response

    async def _review(
        self, request: web.Request, t: Target, verb: str, viewer: bool
    ) -> web.StreamResponse:
        if verb != "create":
            raise method_not_allowed()
        body = await self._body(request, t)  # JSON or protobuf (kubectl sends protobuf)
        if t.res.kind == "SelfSubjectAccessReview":
            return json_response(access_review(body, viewer), 201)
        return json_response(rules_review(body, viewer), 201)

    # reads

    async def _do_get(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        if t.sub == "scale":
            return json_response(self.store.scale(t.namespace or "", t.name))
        obj = self.store.get(t.res.kind, t.namespace, t.name)
        if obj is None:
            raise not_found(t.res, t.name)
        if wants_table(request):
            return json_response(as_table(t.res.kind, [obj], obj["metadata"]["resourceVersion"]))
        return json_response(obj)

    def _selected(self, request: web.Request, t: Target, copies: bool = True) -> list[Obj]:
        selector = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""))
        found = self.store.select(t.res, t.namespace, selector, fields)
        return [copy.deepcopy(o) for o in found] if copies else list(found)

    async def _do_list(self, request: web.Request, t: Target) -> web.StreamResponse:
        # no copies: the answer is serialized before anything else runs on this loop
        items = self._selected(request, t, copies=False)
        version = str(self.store.resource_version)
        if wants_table(request):
            return json_response(as_table(t.res.kind, items, version))
        return json_response(
            {
                "kind": f"{t.res.kind}List",
                "apiVersion": t.res.api_version,
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        )

    async def _do_watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        selector = parse_label_selector(request.query.get("labelSelector", ""))
        fields = list(parse_field_selector(request.query.get("fieldSelector", "")))
        if t.name is not None:
            fields.append(FieldTerm("metadata.name", True, t.name))
        since = request.query.get("resourceVersion", "")
        initial = -1  # events before the bookmark that ends the initial ones (-1: none asked)
        if request.query.get("sendInitialEvents") == "true":  # kubectl's WatchList
            since, initial = "", len(self.store.select(t.res, None))
        bookmark_rv = str(self.store.resource_version)
        queue = self.store.open_watch(t.res.kind, since)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        self._streams.add(response)
        try:
            await response.prepare(request)
            timeout = float(request.query.get("timeoutSeconds") or 1800)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(timeout):
                    if initial >= 0:
                        await self._stream_events(request, t, queue, selector, fields,
                                                  response, initial)  # fmt: skip
                        await self._initial_events_end(t, bookmark_rv, response)
                    await self._stream_events(request, t, queue, selector, fields, response)
        finally:
            self.store.close_watch(queue)
            self._streams.discard(response)
        return response

    async def _stream_events(
        self, request: web.Request, t: Target, queue: asyncio.Queue[Event | None],
        selector: Selector, fields: list[FieldTerm], response: web.StreamResponse,
        count: int = -1,
    ) -> None:  # fmt: skip
        """Write the matching events of the queue (only the next `count` when >= 0)."""
        table = wants_table(request)
        while count != 0 and (event := await _next_event(request, queue)) is not None:
            count -= 1
            obj = event.obj
            if event.kind != t.res.kind:
                continue
            if event.type == "BOOKMARK":
                await response.write(
                    json.dumps({"type": event.type, "object": obj}).encode() + b"\n"
                )
                continue
            if t.namespace and obj["metadata"].get("namespace") != t.namespace:
                continue
            if not (selector_matches(selector, labels_of(obj)) and fields_match(fields, obj)):
                continue
            if table:
                obj = as_table(t.res.kind, [obj], obj["metadata"]["resourceVersion"])
            line = json.dumps({"type": event.type, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

    @staticmethod
    async def _initial_events_end(t: Target, version: str, response: web.StreamResponse) -> None:
        """The BOOKMARK a WatchList client waits for after the current objects."""
        annotations = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": t.res.kind, "apiVersion": t.res.api_version,
               "metadata": {"resourceVersion": version, "annotations": annotations}}  # fmt: skip
        line = json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":"))
        await response.write(line.encode() + b"\n")

    # writes

    @staticmethod
    async def _body(request: web.Request, t: Target) -> Any:
        return await request_body(request, t)  # JSON or protobuf, checked against its schema

    async def _do_create(self, request: web.Request, t: Target) -> web.StreamResponse:
        body = await self._body(request, t)
        obj = await self.store.create(t.res.kind, t.namespace, body, field_manager(request))
        return json_response(obj, 201)

    async def _do_update(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        body = await self._body(request, t)
        if t.sub == "scale":
            if not isinstance(body, dict):
                raise bad_request("the request body must be a JSON object")
            scaled = await self.store.set_scale(t.namespace or "", t.name, body,
                                                field_manager(request))  # fmt: skip
            return json_response(scaled)
        obj = await self.store.replace(t.res.kind, t.namespace, t.name, body, t.sub,
                                       field_manager(request))  # fmt: skip
        return json_response(obj)

    async def _do_patch(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        content_type = request.headers.get("Content-Type", "application/merge-patch+json")
        manager = field_manager(request)
        if content_type.startswith(APPLY_PATCH) and not t.sub:
            force = truthy(request.query.get("force"))
            applied = await apply_body(request)
            obj, created = await self.store.apply(
                t.res.kind,
                t.namespace,
                t.name,
                applied,
                request.query.get("fieldManager", ""),
                force,
            )
            return json_response(obj, 201 if created else 200)
        body = await self._body(request, t)
        if t.sub == "scale":
            scale = apply_patch(self.store.scale(t.namespace or "", t.name), body, content_type)
            scaled = await self.store.set_scale(t.namespace or "", t.name, scale, manager)
            return json_response(scaled)
        obj = await self.store.patch(t.res.kind, t.namespace, t.name, body, content_type, t.sub,
                                     manager)  # fmt: skip
        return json_response(obj)

    @staticmethod
    async def _grace(request: web.Request) -> int | None:
        """gracePeriodSeconds of the DeleteOptions body or the query; None when not given."""
        value = request.query.get("gracePeriodSeconds")
        raw = await request.read()
        if raw and "protobuf" not in request.headers.get("Content-Type", ""):
            try:
                options = json.loads(raw)
            except ValueError as exc:
                raise bad_request(f"the request body is not valid JSON: {exc}") from exc
            if isinstance(options, dict) and options.get("gracePeriodSeconds") is not None:
                value = options["gracePeriodSeconds"]
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"gracePeriodSeconds: invalid value {value!r}") from None

    async def _do_delete(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        grace = await self._grace(request)
        obj = await self.store.delete(t.res.kind, t.namespace, t.name, grace)
        if t.res.kind in ("Pod", "Service", "Namespace"):
            if t.res.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["deletionTimestamp"] = now()
            return json_response(obj)
        return json_response(success_status(t.res, obj))

    async def _do_deletecollection(self, request: web.Request, t: Target) -> web.StreamResponse:
        grace = await self._grace(request)
        for obj in self._selected(request, t):
            m = obj["metadata"]
            if self.store.get(t.res.kind, m.get("namespace"), m["name"]) is not None:
                await self.store.delete(t.res.kind, m.get("namespace"), m["name"], grace)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success"})  # fmt: skip

    # pods: exec, attach and log

    def _pod(self, t: Target) -> Obj:
        assert t.name is not None
        pod = self.store.get("Pod", t.namespace, t.name)
        if pod is None:
            raise not_found(t.res, t.name)
        return pod

    async def _do_log(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self._pod(t)
        container = pick_container(pod, request.query.get("container"))
        previous = request.query.get("previous", "false").lower() in ("true", "1")
        text = ""
        if self.log_handler is not None:
            text = await self.log_handler(self.store.name, t.namespace or "", pod["metadata"][
                "name"], container, previous)  # fmt: skip
        tail = request.query.get("tailLines")
        if tail and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[len(lines) - int(tail) :]) if int(tail) else ""
        return web.Response(text=text, content_type="text/plain")

    async def _do_portforward(self, request: web.Request, t: Target) -> web.StreamResponse:
        self._pod(t)
        raise ApiError(501, "NotImplemented", PORT_FORWARD_UNSUPPORTED)

    async def _do_exec(self, request: web.Request, t: Target) -> web.StreamResponse:
        argv = request.query.getall("command", [])
        if not argv:
            raise bad_request("you must specify at least 1 command")
        return await self._stream(request, t, lambda pod, container: argv, "stdin")

    async def _do_attach(self, request: web.Request, t: Target) -> web.StreamResponse:
        # the lab's main process of a shell image is a shell per session (see attach.py); its
        # stdin stays open without the client's: a shell waiting on its console, as attached
        return await self._stream(request, t, attach_command, None)

    async def _stream(
        self, request: web.Request, t: Target, command: Callable[[Obj, str], list[str]],
        stdin_flag: str | None,
    ) -> web.StreamResponse:  # fmt: skip
        """A process in the pod over the v5/v4 channel protocol (exec, attach)."""
        pod = self._pod(t)
        name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") != "Running":
            raise bad_request(f"pod {name} is not running")
        container = pick_container(pod, request.query.get("container"))
        argv = command(pod, container)
        ws = web.WebSocketResponse(protocols=(V5_PROTOCOL, V4_PROTOCOL), max_msg_size=0)
        if not ws.can_prepare(request).ok:
            raise bad_request("Upgrade request required")
        stdin = stdin_flag is None or truthy(request.query.get(stdin_flag))
        self._streams.add(ws)
        try:
            await ws.prepare(request)
            start = self.exec_handler(self.store.name, t.namespace or "", name, container, argv)
            await ExecSession(ws, argv, stdin).run(start)
        finally:
            self._streams.discard(ws)
        return ws


async def _next_event(request: web.Request, queue: asyncio.Queue[Event | None]) -> Event | None:
    """The watch's next event; None when the watch ends or its client has gone away.

    The get is never cancelled while the client is there (a cancelled get could drop an
    event), only when the watch ends.
    """
    getter = asyncio.ensure_future(queue.get())
    try:
        while True:
            done, _ = await asyncio.wait({getter}, timeout=WATCH_LIVENESS_S)
            if done:
                return getter.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                return None
    finally:
        if not getter.done():
            getter.cancel()
