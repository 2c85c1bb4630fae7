"""What the lab's ingress-nginx reads besides the Ingress rules: the controller's ConfigMap
(`ingress-nginx/ingress-nginx-controller`) and the `nginx.ingress.kubernetes.io/*` annotations.

Defaults and validation follow ingress-nginx v1.15.1: internal/ingress/controller/config/
config.go (`NewDefault`), template/configmap.go (`ReadConfig`: an invalid http-redirect-code
falls back to 308), annotations/canary/main.go (`Parse`) and annotations/parser/validators.go
(the character sets an annotation value may use). A value the real controller would refuse is
refused here too, with the warning it logs reported as an Event on the Ingress.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = "nginx.ingress.kubernetes.io/"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CONTROLLER_NAME = "k8s.io/ingress-nginx"
#: config.go `sslCiphers` (the Mozilla intermediate list).
DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"
)
REDIRECT_CODES = (301, 302, 307, 308)
PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# validators.go: BasicCharsRegex, and IsValidRegex for canary-by-header-pattern
_BASIC = re.compile(r"^[/\-._~a-zA-Z0-9:]*$")
_REGEX_CHARS = re.compile(r"^[/\-._~a-zA-Z0-9:^$\[\](){}*+?|&=\\]*$")
_CIPHERS = re.compile(r"^[A-Za-z0-9!+:@=_-]+$")

#: Annotations of ingress-nginx the lab does not implement: honoured by a real controller,
#: so an Ingress using one gets a Warning Event rather than a silent difference.
UNSUPPORTED = frozenset(
    PREFIX + name
    for name in (
        "rewrite-target",
        "app-root",
        "configuration-snippet",
        "server-snippet",
        "affinity",
        "session-cookie-name",
        "backend-protocol",
        "auth-url",
        "auth-type",
        "auth-secret",
        "whitelist-source-range",
        "allowlist-source-range",
        "denylist-source-range",
        "permanent-redirect",
        "temporal-redirect",
        "from-to-www-redirect",
        "ssl-passthrough",
        "upstream-vhost",
        "custom-http-errors",
        "default-backend",
        "limit-rps",
        "limit-connections",
        "proxy-body-size",
        "enable-cors",
        "canary-by-cookie-value",
        "service-upstream",
        "x-forwarded-prefix",
        "mirror-target",
        "use-port-in-redirects",
    )
)


@dataclass(frozen=True)
class ControllerSettings:
    """The ConfigMap keys the lab honours, with ingress-nginx's defaults."""

    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    http_redirect_code: int = 308
    hsts: bool = True
    hsts_max_age: int = 31536000
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ssl_ciphers: str = DEFAULT_CIPHERS
    no_tls_redirect_locations: tuple[str, ...] = ("/.well-known/acme-challenge",)
    proxy_connect_timeout: int = 5
    proxy_read_timeout: int = 60
    problems: tuple[str, ...] = field(default=(), compare=False)
    """Values refused (the real controller logs them and keeps the default)."""

    @property
    def hsts_header(self) -> str:
        """The Strict-Transport-Security value, "" when HSTS is off."""
        if not self.hsts:
            return ""
        value = f"max-age={self.hsts_max_age}"
        value += "; includeSubDomains" if self.hsts_include_subdomains else ""
        return value + ("; preload" if self.hsts_preload else "")


def controller_settings(data: Mapping[str, str] | None) -> ControllerSettings:
    """The settings of the controller ConfigMap's `data` (None: no ConfigMap)."""
    data = data or {}
    problems: list[str] = []
    values: dict[str, object] = {}
    for key, attr in (
        ("ssl-redirect", "ssl_redirect"),
        ("force-ssl-redirect", "force_ssl_redirect"),
        ("hsts", "hsts"),
        ("hsts-preload", "hsts_preload"),
        ("hsts-include-subdomains", "hsts_include_subdomains"),
    ):
        if key in data:
            parsed = parse_bool(data[key])
            if parsed is None:
                problems.append(f"{key}: {data[key]!r} is not a boolean")
            else:
                values[attr] = parsed
    for key, attr in (
        ("hsts-max-age", "hsts_max_age"),
        ("proxy-connect-timeout", "proxy_connect_timeout"),
        ("proxy-read-timeout", "proxy_read_timeout"),
    ):
        if key in data:
            number = parse_int(data[key])
            if number is None or number < 0:
                problems.append(f"{key}: {data[key]!r} is not a whole number")
            else:
                values[attr] = number
    if "http-redirect-code" in data:
        code = parse_int(data["http-redirect-code"])
        if code not in REDIRECT_CODES:  # configmap.go: not a valid HTTP redirect code
            problems.append(
                f"http-redirect-code: {data['http-redirect-code']!r} is not a valid HTTP "
                "redirect code (301, 302, 307, 308): using the default 308"
            )
        else:
            values["http_redirect_code"] = code
    if "ssl-protocols" in data:
        protocols = tuple(data["ssl-protocols"].split())
        unknown = [p for p in protocols if p not in PROTOCOLS]
        if unknown or not protocols:
            problems.append(f"ssl-protocols: unknown protocol(s) {', '.join(unknown) or '-'}")
        else:
            values["ssl_protocols"] = protocols
    if "ssl-ciphers" in data:
        if _CIPHERS.fullmatch(data["ssl-ciphers"].strip()):
            values["ssl_ciphers"] = data["ssl-ciphers"].strip()
        else:
            problems.append(f"ssl-ciphers: {data['ssl-ciphers']!r} is not a cipher list")
    if "no-tls-redirect-locations" in data:
        values["no_tls_redirect_locations"] = tuple(
            p.strip() for p in data["no-tls-redirect-locations"].split(",") if p.strip()
        )
    return ControllerSettings(**values, problems=tuple(problems))  # type: ignore[arg-type]


def parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool, which ingress-nginx uses for boolean values."""
    lowered = text.strip()
    if lowered in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if lowered in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def parse_int(text: str) -> int | None:
    stripped = text.strip()
    return int(stripped) if re.fullmatch(r"[+-]?\d+", stripped) else None


@dataclass(frozen=True)
class CanarySpec:
    """An Ingress's canary annotations (annotations/canary/main.go `Config`)."""

    weight: int = 0
    weight_total: int = 100
    header: str = ""
    header_value: str = ""
    header_pattern: str = ""
    cookie: str = ""

    @property
    def total(self) -> int:
        """balancer.lua: canary-weight-total counts only when above 100."""
        return self.weight_total if self.weight_total > 100 else 100


@dataclass(frozen=True)
class IngressAnnotations:
    """What the lab reads from one Ingress's annotations."""

    canary: CanarySpec | None = None
    """Set when `canary: "true"` (a canary Ingress)."""
    ssl_redirect: bool | None = None
    """None: the ConfigMap's `ssl-redirect`."""
    force_ssl_redirect: bool | None = None
    force_no_ssl_redirect: bool = False
    preserve_trailing_slash: bool = False
    use_regex: bool = False
    warnings: tuple[str, ...] = ()
    """Messages for Warning Events (what the real controller logs)."""


def read_annotations(annotations: Mapping[str, str]) -> IngressAnnotations:
    """The annotations of one Ingress, refused values reported in `warnings`."""
    warnings: list[str] = []

    def flag(name: str) -> bool | None:
        if PREFIX + name not in annotations:
            return None
        value = parse_bool(str(annotations[PREFIX + name]))
        if value is None:
            warnings.append(f"{PREFIX}{name}: {annotations[PREFIX + name]!r} is not a boolean")
        return value

    def text(name: str, pattern: re.Pattern[str] = _BASIC) -> str:
        value = str(annotations.get(PREFIX + name, ""))
        if value and not pattern.fullmatch(value):
            warnings.append(f"{PREFIX}{name} is invalid, defaulting to ''")
            return ""
        return value

    def number(name: str, default: int) -> int:
        if PREFIX + name not in annotations:
            return default
        value = parse_int(str(annotations[PREFIX + name]))
        if value is None:
            warnings.append(f"{PREFIX}{name} is invalid, defaulting to '{default}'")
            return default
        return value

    spec = CanarySpec(
        weight=number("canary-weight", 0),
        weight_total=number("canary-weight-total", 100),
        header=text("canary-by-header"),
        header_value=text("canary-by-header-value"),
        header_pattern=text("canary-by-header-pattern", _REGEX_CHARS),
        cookie=text("canary-by-cookie"),
    )
    enabled = flag("canary") is True
    configured = spec.weight > 0 or any(
        (spec.header, spec.header_value, spec.header_pattern, spec.cookie)
    )
    if not enabled and configured:  # canary/main.go: "configured but not enabled"
        warnings.append(
            f"{PREFIX}canary: canary annotations are configured but not enabled "
            f'(set {PREFIX}canary: "true"): treated as a regular Ingress'
        )
    warnings += [
        f"{name} is not supported by the lab's ingress controller: ignored"
        for name in sorted(set(annotations) & UNSUPPORTED)
    ]
    return IngressAnnotations(
        canary=spec if enabled else None,
        ssl_redirect=flag("ssl-redirect"),
        force_ssl_redirect=flag("force-ssl-redirect"),
        force_no_ssl_redirect=flag("force-no-ssl-redirect") is True,
        preserve_trailing_slash=flag("preserve-trailing-slash") is True,
        use_regex=flag("use-regex") is True,
        warnings=tuple(warnings),
    )
