"""Errors a user can act on, each with its own process exit code.

The CLI and the pytest plugin turn these into one line on stderr and the exit
code below, never a traceback.
"""

from __future__ import annotations

from netconform.redact import redact


class NetconformError(Exception):
    """Base: a problem the user can fix; `str(err)` is the one line to print, with every
    known secret redacted (`netconform.redact`), whatever the message was built from."""

    exit_code = 2

    def __str__(self) -> str:
        return redact(super().__str__())


class UsageError(NetconformError):
    """A command-line option's bad value (`--timeout exec=abc`): argparse's own code."""

    exit_code = 2


class TopologyError(NetconformError):
    """The topology file is missing, unreadable or does not validate."""

    exit_code = 3


class UnknownContextError(NetconformError):
    """A kubeconfig context named by the user does not exist."""

    exit_code = 4


class ApiUnreachableError(NetconformError):
    """A cluster's API server does not answer."""

    exit_code = 5


class ForbiddenError(NetconformError):
    """The API refused a verb for RBAC reasons (HTTP 403)."""

    exit_code = 6


class MissingToolError(NetconformError):
    """A program the lab or a probe needs is not installed."""

    exit_code = 7


class LabError(NetconformError):
    """The embedded lab could not be built, reached or changed."""

    exit_code = 8


class CloudError(NetconformError):
    """A cloud API refused a call or a cloud resource is missing."""

    exit_code = 9


class WaitTimeoutError(NetconformError):
    """A named wait did not converge within its timeout."""

    exit_code = 10


class WaitStoppedError(WaitTimeoutError):
    """The run is being interrupted (Ctrl-C): every wait still polling gives up at once."""


class DnsConfigError(NetconformError):
    """A cluster's DNS configuration (Corefile, stubDomains) does not parse."""

    exit_code = 11


class BaselineMismatchError(NetconformError):
    """A baseline outcome file is of another topology (digest) or profile than this run."""

    exit_code = 12


class OutcomeFileError(NetconformError):
    """An outcome file is unreadable, not JSON, of an unknown schema version, or invalid."""

    exit_code = 13


class UnauthorizedError(NetconformError):
    """The API server refused the kubeconfig's credentials (HTTP 401)."""

    exit_code = 14


class ConfirmationError(NetconformError):
    """A build on a real cloud (it costs money) without `--yes` or `build.confirm: true`."""

    exit_code = 15
