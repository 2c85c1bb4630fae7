"""`pods/attach`: what a container's main process is in the lab, and so what attach joins.

A lab pod runs no image, so a container's "main process" is what the lab's image-to-behaviour
mapping (controllers/podruntime.py) makes of it:
- a shell image (alpine, busybox, ubuntu... `SHELL_IMAGES`) with no `command`, no `args` and
  no declared port (ports make it the lab's echo server, as for any image): the image's
  default command is a shell reading the container's stdin (`kubectl run -it` asks for
  `stdin: true`). Attach starts that shell, `sh` inside the pod through the kubelet's exec
  handler, one shell per attach session, so `kubectl run -it alpine-shell` and
  `echo 'ping -c 3 IP; exit' | kubectl run -i ...` behave as on a real cluster. Unlike the
  real one, a second attach gets a fresh shell (no state shared with an earlier session), and
  there is no terminal (no pty): kubectl without one does not ask for it, and with one it gets
  a shell on pipes (no prompt, no line editing).
- anything else (the echo server of agnhost/nginx/netshoot, a `command` such as `sleep 3600`):
  no process a client could join: attach answers a one-line Status saying so.
"""

from __future__ import annotations

from typing import Final

from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import Obj

SHELL_IMAGES: Final = frozenset(
    {"alpine", "busybox", "ubuntu", "debian", "centos", "fedora", "radial/busyboxplus"}
)
"""Images (repository without registry or tag) whose default command is a shell."""
SHELL: Final = ["sh"]


def image_repository(image: str) -> str:
    """`docker.io/library/alpine:3.5` -> `alpine`; `radial/busyboxplus:curl` -> the same path."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # a registry host
    if parts[:1] == ["library"]:
        parts = parts[1:]
    return "/".join(parts)


def runs_a_shell(container: Obj) -> bool:
    """Whether the container's main process, in the lab, is its image's default shell."""
    if container.get("command") or container.get("args") or container.get("ports"):
        return False
    return image_repository(str(container.get("image", ""))) in SHELL_IMAGES


def attach_command(pod: Obj, container_name: str) -> list[str]:
    """The process an attach session to `container_name` runs; 400 when there is none."""
    container = next(c for c in pod["spec"]["containers"] if c["name"] == container_name)
    if runs_a_shell(container):
        return list(SHELL)
    image = container.get("image", "")
    what = "command " + " ".join(container["command"]) if container.get("command") else image
    raise ApiError(
        400,
        "BadRequest",
        f"container {container_name} of pod {pod['metadata']['name']} cannot be attached in the "
        f"netconform lab: its process ({what}) is the lab's stand-in, not a process with a "
        "console; only shell images without a command (alpine, busybox...) attach (use "
        "kubectl exec or kubectl logs)",
    )
