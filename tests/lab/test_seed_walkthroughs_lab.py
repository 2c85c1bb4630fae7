"""The seeds' walkthroughs (000, 002, 004: secret, ingress, canary, https) typed verbatim,
with the real kubectl, against a lab
of their own whose kubeconfig names its contexts as `aws eks update-kubeconfig --alias` does.

Each command runs in bash as a user types it (`$(...)`, heredocs, pipes); where one cannot be
verbatim the comment beside it says why."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from netconform.waits import wait_until
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.tools import kubectl_binary

PREFIX = f"sw{os.getpid() % 100000}"  # unique per test process
REGIONS = ("central", "east", "west")


class Shell:
    """bash with the venv's kubectl first on PATH and the aliased kubeconfig."""

    def __init__(self, kubeconfig: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PATH": f"{Path(kubectl_binary()).parent}:{os.environ['PATH']}",
        }

    def __call__(self, script: str, stdin: str | None = None) -> str:
        """Run `script`; assert it exits 0 as a user would see; its stdout."""
        done = subprocess.run(
            ["bash", "-c", script],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        assert "couldn't attach" not in done.stderr, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    root = tmp_path_factory.mktemp("seeds")
    paths = LabPaths(root / "lab")
    try:
        control.up(paths, regions=3, prefix=PREFIX, owner_pid=os.getpid())
        config = yaml.safe_load(paths.kubeconfig.read_text())
        # `aws eks update-kubeconfig --alias mrc-central` names the context mrc-central
        config["contexts"] = [
            {**c, "name": c["name"].replace("lab-", "mrc-")}
            for c in config["contexts"]
            if c["name"] in {f"lab-{r}" for r in REGIONS}
        ]
        config["current-context"] = "mrc-central"
        aliased = root / "kubeconfig"
        aliased.write_text(yaml.safe_dump(config))
        yield Shell(aliased, root)
    finally:
        control.down(paths, prefix=PREFIX)


def field(text: str, name: str) -> str:
    """`Name:   value` of kubectl describe."""
    found = re.search(rf"^{re.escape(name)}:\s+(\S+)", text, re.MULTILINE)
    assert found, f"no {name}: in\n{text}"
    return found.group(1)


def test_seed_000_namespaces_dns_stubs_alpine_and_ping_across_regions(shell: Shell) -> None:
    # the lab pre-creates the region namespaces for the suite; a fresh cluster has none
    for region in REGIONS:
        shell(f"kubectl delete ns {region} --context mrc-{region}")
    shell("kubectl create ns central --context mrc-central")
    shell("kubectl create ns east --context mrc-east")
    shell("kubectl create ns west --context mrc-west")
    # dns-lb.yaml is not applied: the lab creates kube-dns-lb at up (its stub audit needs it)
    lb = {
        r: field(
            shell(f"kubectl describe svc kube-dns-lb --namespace kube-system --context mrc-{r}"),
            "LoadBalancer Ingress",
        )
        for r in ("west", "east")
    }
    manifest = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-dns
  namespace: kube-system
data:
  stubDomains: |
    {{"east.svc.cluster.local": ["{lb["east"]}"], "west.svc.cluster.local": ["{lb["west"]}"]}}
"""
    (shell.cwd / "dns-configmap-central.yaml").write_text(manifest)
    # $TUTORIAL_HOME/networking/ is the tutorial's checkout: the file is written here instead
    applied = shell("kubectl apply -f dns-configmap-central.yaml --context mrc-central")
    assert "configmap/kube-dns created" in applied
    deleted = shell(
        "kubectl delete pods -l k8s-app=kube-dns --namespace kube-system --context mrc-central"
    )
    assert "coredns-" in deleted and "deleted" in deleted
    # the user types `exit` at the shell's prompt: here it comes on stdin (no terminal)
    shell(
        "kubectl run --image=alpine:3.5 -it alpine-shell -n central --context mrc-central",
        stdin="exit\n",
    )
    described = shell("kubectl describe pod alpine-shell -n central --context mrc-central")
    central_ip = field(described, "IP")
    assert central_ip.startswith("10.100."), described
    pinged = shell(
        "kubectl run --image=alpine:3.5 -it alpine-shell -n east --context mrc-east",
        stdin=f"ping -c 3 {central_ip}\nexit\n",
    )
    assert f"64 bytes from {central_ip}" in pinged, pinged
    assert "3 packets transmitted, 3 received" in pinged, pinged


NGINX = """cat << EOF | kubectl apply -f -
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
spec:
  selector:
    matchLabels:
      run: nginx
  replicas: 2
  template:
    metadata:
      labels:
        run: nginx
    spec:
      containers:
      - name: my-nginx
        image: nginx
        ports:
        - containerPort: 80
EOF"""
POD_NAME = 'POD_NAME=$(kubectl get pods -l run=busybox -o jsonpath="{.items[0].metadata.name}")'


def wait_running(shell: Shell, selector: str, count: int) -> None:
    """What the user does by re-running `kubectl get pods` until they show Running."""
    shell(f"kubectl wait --for=condition=Ready pod -l {selector} --timeout=30s")
    pods = shell(f"kubectl get pods -l {selector} --no-headers").splitlines()
    assert len(pods) == count and all("Running" in p for p in pods), pods


def test_seed_002_nginx_expose_busybox_curl_endpoints_services_dns(shell: Shell) -> None:
    assert "deployment.apps/nginx created" in shell(NGINX)
    assert "service/nginx exposed" in shell("kubectl expose deployment/nginx")
    shell("kubectl run busybox --image=radial/busyboxplus:curl --command -- sleep 3600")
    wait_running(shell, "run=nginx", 2)
    wait_running(shell, "run=busybox", 1)
    endpoints = shell("kubectl get ep nginx")
    nginx_ips = re.findall(r"(\d+\.\d+\.\d+\.\d+):80", endpoints)
    assert len(nginx_ips) == 2, endpoints
    for ip in nginx_ips:
        # the lab's echo server stands in for nginx: it answers JSON naming the pod, not
        # "Welcome to nginx!" (the lab runs no images)
        answer = shell(f"{POD_NAME}; kubectl exec $POD_NAME -- curl {ip}")
        assert f'"ip": "{ip}"' in answer and '"pod": "nginx-' in answer, answer
    services = shell("kubectl get svc")
    rows = {line.split()[0]: line.split() for line in services.splitlines()[1:]}
    row = rows["nginx"]
    assert row[1:2] == ["ClusterIP"] and row[4] == "80/TCP", services
    answer = shell(f"{POD_NAME}; kubectl exec $POD_NAME -- curl {row[2]}")
    assert any(f'"ip": "{ip}"' in answer for ip in nginx_ips), answer
    # kubectl run makes a pod today (it made a Deployment when the seed was written), so the
    # seed's `kubectl delete deployment busybox` is `kubectl delete pod busybox`
    shell("kubectl delete pod busybox")
    shell("kubectl delete deployment nginx")
    shell("kubectl delete svc nginx")
    shell("kubectl run busybox --image=busybox:1.28 --command -- sleep 3600")
    wait_running(shell, "run=busybox", 1)
    # -t without a terminal: kubectl says "Unable to use a TTY" and goes on without one
    looked_up = shell(f"{POD_NAME}; kubectl exec -ti $POD_NAME -- nslookup kubernetes")
    assert "kubernetes.default.svc.cluster.local" in looked_up, looked_up
    assert f"Address: {rows['kubernetes'][2]}" in looked_up, looked_up
    shell("kubectl delete pod busybox")


def test_seed_004_create_secret_tls(shell: Shell) -> None:
    shell(
        "openssl req -x509 -nodes -days 1 -newkey rsa:2048 -keyout KEY_FILE -out CERT_FILE "
        "-subj /CN=example.com 2>/dev/null"
    )
    # verbatim, the placeholder CERT_NAME is refused as a real server refuses it
    verbatim = subprocess.run(
        ["bash", "-c", "kubectl create secret tls CERT_NAME --key KEY_FILE --cert CERT_FILE"],
        capture_output=True,
        text=True,
        env=shell.env,
        cwd=shell.cwd,
        timeout=60,
        check=False,
    )
    assert verbatim.returncode == 1
    assert 'metadata.name: Invalid value: "CERT_NAME": a lowercase RFC 1123' in verbatim.stderr
    # so the name is filled in, as the reader does; the files keep the seed's names
    created = shell("kubectl create secret tls cert-name --key KEY_FILE --cert CERT_FILE")
    assert "secret/cert-name created" in created
    kind = shell("kubectl get secret cert-name -o jsonpath='{.type}'")
    assert kind == "kubernetes.io/tls"
    keys = shell("kubectl get secret cert-name -o jsonpath='{.data}'")
    assert '"tls.crt"' in keys and '"tls.key"' in keys, keys


INGRESS_DEMO = """
# k8s/ingress-demo.yaml
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: online-boutique-ing
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: frontend
            port:
              number: 80
  ingressClassName: nginx
"""
CANARY = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: "5"
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: frontend-canary
            port:
              number: 80
"""
TLS_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: tls-example-ingress
  annotations:
    nginx.ingress.kubernetes.io/force-ssl-redirect: "true"
spec:
  ingressClassName: nginx
  tls:
  - hosts:
      - https-example.foo.com
    secretName: testsecret-tls
  rules:
  - host: https-example.foo.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: frontend
            port:
              number: 80
"""


def test_seed_004_ingress_canary_and_https(shell: Shell) -> None:
    # deploy.yaml is not applied (no internet here): every lab cluster starts with it applied
    pods = shell("kubectl get pods -n ingress-nginx")
    assert "ingress-nginx-controller-" in pods and "Running" in pods, pods
    lb = field(
        shell("kubectl describe svc ingress-nginx-controller -n ingress-nginx"),
        "LoadBalancer Ingress",
    )
    assert "nginx" in shell("kubectl get ingressclass")
    # the Online Boutique frontend and its 0.9.0 release stand in as two echo Deployments
    for name in ("frontend", "frontend-canary"):
        shell(
            f"kubectl create deployment {name} --image=registry.k8s.io/e2e-test-images/"
            f"agnhost:2.47 --port=8080 -- /agnhost serve-hostname --port=8080"
        )
        shell(f"kubectl expose deployment {name} --port=80 --target-port=8080")
    shell("kubectl apply -f -", stdin=INGRESS_DEMO)  # host: the reader's LB domain, filled in
    world = f"{PREFIX}-world"  # "visit the application using the NLB domain name"
    visit = f"ip netns exec {world} curl -s --resolve shop.example:80:{lb} http://shop.example/"
    # the controller takes the Ingress up within a second or so, as a real one does
    wait_until(
        lambda: '"pod": "frontend-' in shell(visit),
        timeout=10,
        name="ingress_serves_the_demo",
        interval=0.1,
    )
    assert lb in shell("kubectl get ing online-boutique-ing")
    shell("kubectl apply -f -", stdin=CANARY)
    # the seed's loop, `while sleep 0.05; do wget ... | grep Pod`, as 200 requests
    seen = shell(f"for i in $(seq 200); do {visit}; echo; done")
    canaries = seen.count('"pod": "frontend-canary-')
    assert 0 < canaries < 40, seen  # 5% of 200: 10 expected, 0 or 40+ has odds under 1e-4
    # bonus: route users by the request header FOO=bar instead of a percentage
    shell(
        "kubectl annotate ingress canary nginx.ingress.kubernetes.io/canary-weight- "
        "nginx.ingress.kubernetes.io/canary-by-header=FOO "
        "nginx.ingress.kubernetes.io/canary-by-header-value=bar --overwrite"
    )

    def by_header(value: str) -> str:
        loop = f"for i in $(seq 20); do {visit} -H 'FOO: {value}'; echo; done"
        return shell(loop)

    wait_until(
        lambda: by_header("bar").count('"pod": "frontend-canary-') == 20,
        timeout=10,
        name="ingress_canary_by_header",
        interval=0.1,
    )
    assert '"pod": "frontend-canary-' not in by_header("baz")
    # HTTPS: the seed's openssl and kubectl create secret tls, YOUR_HOST filled in
    shell(
        "openssl req -x509 -nodes -days 365 -newkey rsa:2048 -keyout tls.key -out tls.crt "
        '-subj "/CN=https-example.foo.com" '
        '-addext "subjectAltName = DNS:https-example.foo.com" 2>/dev/null'
    )
    shell("kubectl create secret tls testsecret-tls --key tls.key --cert tls.crt")
    shell("kubectl apply -f -", stdin=TLS_INGRESS)  # the website's example, class and redirect
    host = "https-example.foo.com"
    plain = f"ip netns exec {world} curl -s -I --resolve {host}:80:{lb} http://{host}/path?q=1"
    secure = (
        f"ip netns exec {world} curl -s -i --cacert tls.crt --resolve {host}:443:{lb} "
        f"https://{host}/"
    )
    # three in a row: for a moment after a reload nginx's old workers still accept (a real
    # controller's do too), so one answer of the new configuration is not yet all of them
    wait_until(
        lambda: all(shell(plain).startswith("HTTP/1.1 308") for _ in range(3)),
        timeout=10,
        name="ingress_tls_redirect",
        interval=0.1,
    )
    assert f"Location: https://{host}/path?q=1" in shell(plain)
    answer = shell(secure)  # verified against the seed's own self-signed certificate
    assert answer.startswith("HTTP/1.1 200") and "Strict-Transport-Security" in answer, answer
