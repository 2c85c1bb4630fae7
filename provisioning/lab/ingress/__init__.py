"""The lab's ingress-nginx: Ingress objects -> a routing model -> an nginx configuration that
Debian's nginx serves, one process per controller pod, in the pod's network namespace.

- `settings`: the controller ConfigMap's keys and the Ingress annotations it honours;
- `model`: pure, the routing model built from the API objects (servers, locations, backends,
  canaries, certificates) and the problems to report as Events;
- `nginxconf`: pure, the model rendered as nginx.conf, each line owned by the Ingress it came
  from (so a line `nginx -t` rejects names its Ingress);
- `certs`: certificates from TLS Secrets, the controller's fake certificate, fault certificates;
- `nginx`: one nginx per controller pod (start, test, reload, stop), by exact pid.

The controller that ties them to the API is `provisioning/lab/controllers/ingress_nginx.py`.
"""
