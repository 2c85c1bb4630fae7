"""The routing model rendered as nginx.conf (pure), without Lua.

What ingress-nginx does in Lua is done here with nginx's own modules, each rule cited:
- the canary decision (balancer.lua `route_to_alternative_balancer`): header first
  (`always`/`never`, or an exact `canary-by-header-value`, or a `canary-by-header-pattern`
  PCRE match; a pattern that does not compile makes a request carrying the header mainline),
  then the cookie (`always`/`never`), then the weight: `split_clients` on `$request_id`, 16
  random bytes nginx draws for every request, so each request's draw is independent and
  uniform (split_clients hashes it with MurmurHash2 into 10000 parts of a percent);
- the HTTPS redirect (lua_ingress.lua `rewrite`): `http-redirect-code` to
  `https://<host without port><request URI>`, one trailing `/` stripped unless
  `preserve-trailing-slash`; requests under a `no-tls-redirect-locations` path are not
  redirected;
- HSTS (`hsts*` keys) on every https response, none on http;
- 503 for a backend without ready endpoints, 404 from the default server.

Every rendered line is owned by the Ingress (or canary pattern) it came from, so the line
`nginx -t` names in its error leads back to one Ingress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.lab.ingress.model import (
    DEFAULT_SERVER,
    Backend,
    Canary,
    IngressConfig,
    Key,
    Location,
    Server,
)

UNAVAILABLE_PORT = 8181
STATUS_PORT = 10254
UNAVAILABLE = "netconform-unavailable"
GENERATION_PATH = "/netconform/generation"

Owner = tuple[str, ...]
"""`("base",)`, `("ingress", namespace, name)` or `("pattern", pattern, namespace, name)`."""
BASE: Owner = ("base",)


@dataclass(frozen=True)
class Layout:
    """Where one controller pod's nginx keeps its files."""

    root: Path
    generation: int = 0
    http_port: int = 80
    https_port: int = 443
    workers: int = 1

    def cert_file(self, cert_id: str) -> Path:
        return self.root / "certs" / f"{cert_id}.pem"

    @property
    def default_cert(self) -> Path:
        return self.root / "certs" / "default.pem"


@dataclass
class Rendered:
    """nginx.conf text and the owner of each of its lines (index = line number - 1)."""

    lines: list[str] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)

    def add(self, owner: Owner, *lines: str) -> None:
        for line in lines:
            self.lines.append(line)
            self.owners.append(owner)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def owner_of(self, line_number: int) -> Owner:
        """The owner of a 1-based line (BASE when out of range)."""
        return self.owners[line_number - 1] if 0 < line_number <= len(self.owners) else BASE


def quote(text: str) -> str:
    """An nginx quoted string: its parser unescapes exactly `\\\\`, `\\"` and `\\'`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'") + '"'


def render(config: IngressConfig, layout: Layout, label: str = "") -> Rendered:
    """The nginx.conf of `config` for the pod whose files live in `layout`."""
    out = Rendered()
    root, s = layout.root, config.settings
    out.add(
        BASE,
        f"# nginx.conf of the lab's ingress-nginx {label}, generation "
        f"{layout.generation}: generated from the API objects, do not edit",
        "user root;",
        f"worker_processes {layout.workers};",
        f"pid {root / 'nginx.pid'};",
        f"error_log {root / 'error.log'} notice;",
        "events { worker_connections 1024; }",
        "http {",
        '  log_format netconform \'$remote_addr "$host" "$request" $status '
        "$upstream_addr $request_time ingress=$netconform_ingress';",
        f"  access_log {root / 'access.log'} netconform;",
        *(
            f"  {kind}_temp_path {root / 'tmp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        "  server_names_hash_bucket_size 128;",
        "  map_hash_bucket_size 128;",
        "  variables_hash_bucket_size 128;",
        "  proxy_http_version 1.1;",
        # what ingress-nginx sends upstream with use-forwarded-headers off (the default)
        "  proxy_set_header Host $host;",
        "  proxy_set_header X-Request-ID $request_id;",
        "  proxy_set_header X-Real-IP $remote_addr;",
        "  proxy_set_header X-Forwarded-For $remote_addr;",
        "  proxy_set_header X-Forwarded-Host $host;",
        "  proxy_set_header X-Forwarded-Port $server_port;",
        "  proxy_set_header X-Forwarded-Proto $scheme;",
        "  proxy_set_header X-Scheme $scheme;",
        f"  proxy_connect_timeout {s.proxy_connect_timeout}s;",
        f"  proxy_read_timeout {s.proxy_read_timeout}s;",
        "  proxy_next_upstream error timeout;",
        f"  ssl_protocols {' '.join(s.ssl_protocols)};",
        f"  ssl_ciphers {s.ssl_ciphers};",
        f'  map $scheme $netconform_hsts {{ https {quote(s.hsts_header)}; default ""; }}',
        "  add_header Strict-Transport-Security $netconform_hsts always;",
        '  map $request_uri $netconform_uri_trimmed { "~^(?<netconform_t>.*)/$" '
        "$netconform_t; default $request_uri; }",
        '  map $http_host $netconform_redirect_host { "~^(?<netconform_h>[^:]+)" '
        "$netconform_h; default $host; }",
        "  map $uri $netconform_tls_exempt {",
        *(f"    {quote('~^' + re.escape(p))} 1;" for p in s.no_tls_redirect_locations),
        "    default 0;",
        "  }",
        '  map "$scheme$netconform_tls_exempt" $netconform_to_https { http0 1; default 0; }',
        f"  upstream {UNAVAILABLE} {{ server 127.0.0.1:{UNAVAILABLE_PORT}; }}",
        f"  server {{ listen 127.0.0.1:{UNAVAILABLE_PORT}; access_log off; "
        "location / { return 503; } }",
        f"  server {{ listen 127.0.0.1:{STATUS_PORT}; access_log off; "
        f'location = /healthz {{ return 200 "ok\\n"; }} location = {GENERATION_PATH} '
        f'{{ return 200 "{layout.generation}\\n"; }} }}',
    )
    _upstreams(out, config)
    canaries = _canaries(out, config)
    _server(out, config.default, config, layout, canaries, default=True)
    for server in config.servers:
        _server(out, server, config, layout, canaries, default=False)
    out.add(BASE, "}")
    return out


def _ingress(key: Key) -> Owner:
    return ("ingress", *key)


def _upstreams(out: Rendered, config: IngressConfig) -> None:
    owners: dict[str, Owner] = {}
    for server in (config.default, *config.servers):
        for loc in server.locations:
            owners.setdefault(loc.backend.upstream, _ingress(loc.ingress))
            if loc.canary is not None:
                owners.setdefault(loc.canary.backend.upstream, _ingress(loc.canary.ingress))
    for name, servers in sorted(config.backends().items()):
        lines = [f"    server {s} max_fails=0;" for s in servers]
        out.add(owners.get(name, BASE), f"  upstream {name} {{", *lines, "  }")


def _canaries(out: Rendered, config: IngressConfig) -> dict[tuple[str, str, str], str]:
    """The decision maps of every canary; (host, match, path) -> the variable to proxy to."""
    variables: dict[tuple[str, str, str], str] = {}
    for server in (config.default, *config.servers):
        for loc in server.locations:
            if loc.canary is not None:
                var = f"netconform_canary_{len(variables)}"
                _canary_maps(out, var, loc, loc.canary)
                variables[server.host, loc.match, loc.path] = var
    return variables


def _canary_maps(out: Rendered, var: str, loc: Location, canary: Canary) -> None:
    spec, owner = canary.spec, _ingress(canary.ingress)
    parts = ["", "", ""]
    if spec.header:
        header = "$http_" + spec.header.lower().replace("-", "_")  # balancer.lua's lookup
        if spec.header_value:  # exact, case-sensitive (`==` in Lua)
            rules = [f"{quote('~^' + re.escape(spec.header_value) + '$')} 1;"]
        elif spec.header_pattern and canary.pattern_ok:  # ngx.re.match: unanchored PCRE
            owner = ("pattern", spec.header_pattern, *canary.ingress)
            rules = [f"{quote('~' + spec.header_pattern)} 1;"]
        elif spec.header_pattern:  # the regex errors: "return false", i.e. mainline
            rules = ['"" "";', "default 0;"]
        else:
            rules = ['"~^always$" 1;', '"~^never$" 0;']
        default = [] if any(r.startswith("default") for r in rules) else ['default "";']
        out.add(owner, f"  map {header} ${var}_h {{ {' '.join([*rules, *default])} }}")
        parts[0] = f"${var}_h"
    if spec.cookie:  # $http_cookie, so a cookie name with '-' works as Lua's lookup does
        name = re.escape(spec.cookie)
        always = quote(r"~(^|;\s*)" + name + r"=always(;|$)")
        never = quote(r"~(^|;\s*)" + name + r"=never(;|$)")
        out.add(
            _ingress(canary.ingress),
            f'  map $http_cookie ${var}_c {{ {always} 1; {never} 0; default ""; }}',
        )
        parts[1] = f"${var}_c"
    parts[2] = _weight(out, var, canary)
    main = loc.backend.upstream or UNAVAILABLE
    alt = canary.backend.upstream or UNAVAILABLE
    out.add(
        _ingress(canary.ingress),
        f"  map {quote(':'.join(parts))} ${var} {{ "
        f'"~^1:" {alt}; "~^0:" {main}; "~^:1:" {alt}; "~^:0:" {main}; "~^::1$" {alt}; '
        f"default {main}; }}",
    )


def _weight(out: Rendered, var: str, canary: Canary) -> str:
    """`math.random(total) <= weight` as a per-request split, or a constant at 0 or total."""
    weight, total = canary.spec.weight, canary.spec.total
    if weight <= 0:
        return "0"
    if weight >= total:
        return "1"
    percent = min(max(round(100 * weight / total, 2), 0.01), 99.99)
    out.add(
        _ingress(canary.ingress),
        f'  split_clients "${{request_id}}" ${var}_w {{ {percent:.2f}% 1; * 0; }}',
    )
    return f"${var}_w"


def server_name(host: str) -> str:
    """template.go `buildServerName`: `*.example.com` covers exactly one label."""
    if host == DEFAULT_SERVER:
        return "_"
    if not host.startswith("*."):
        return host
    return quote(r"~^(?<subdomain>[\w-]+)\." + re.escape(host[2:]) + "$")


def _server(
    out: Rendered,
    server: Server,
    config: IngressConfig,
    layout: Layout,
    canaries: dict[tuple[str, str, str], str],
    default: bool,
) -> None:
    flag = " default_server" if default else ""
    cert = layout.cert_file(server.cert.id) if server.cert else layout.default_cert
    owner = _ingress(server.locations[0].ingress) if server.locations else BASE
    out.add(
        owner,
        "  server {",
        f"    listen {layout.http_port}{flag};",
        f"    listen {layout.https_port} ssl{flag};",
        f"    server_name {server_name(server.host)};",
        f"    ssl_certificate {cert};",
        f"    ssl_certificate_key {cert};",
        '    set $netconform_ingress "-";',
    )
    has_root = False
    for loc in server.locations:
        has_root |= loc.match in ("root", "regex") and loc.path == "/"
        var = canaries.get((server.host, loc.match, loc.path))
        for selector in _selectors(loc, server.locations):
            _location(out, selector, loc, var, config)
    if not has_root:
        out.add(owner, "    location / { return 404; }")
    out.add(owner, "  }")


def _selectors(loc: Location, siblings: tuple[Location, ...]) -> list[str]:
    """nginx location selectors of one Ingress path (location.go `updateServerLocations`)."""
    if loc.match == "regex":
        return [f"~* {quote('^' + loc.path)}"]
    if loc.match == "exact":
        return [f"= {quote(loc.path)}"]
    if loc.match == "root":
        return ["/"]
    exact_taken = any(s.match == "exact" and s.path == loc.path for s in siblings)
    return [quote(loc.path + "/")] + ([] if exact_taken else [f"= {quote(loc.path)}"])


def _location(
    out: Rendered, selector: str, loc: Location, canary_var: str | None, config: IngressConfig
) -> None:
    owner = _ingress(loc.ingress)
    body = [f"      set $netconform_ingress {quote('/'.join(loc.ingress))};"]
    if loc.redirect:
        uri = "$request_uri" if loc.preserve_trailing_slash else "$netconform_uri_trimmed"
        code = config.settings.http_redirect_code
        body.append(
            f"      if ($netconform_to_https) {{ return {code} "
            f"https://$netconform_redirect_host{uri}; }}"
        )
    if canary_var is not None:
        body.append(f"      proxy_pass http://${canary_var};")
    else:
        body.append(_proxy(loc.backend))
    out.add(owner, f"    location {selector} {{", *body, "    }")


def _proxy(backend: Backend) -> str:
    if not backend.upstream:
        return "      return 503;"
    return f"      proxy_pass http://{backend.upstream};"
