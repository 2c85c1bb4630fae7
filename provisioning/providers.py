"""Which class implements each cloud's Provider: a registry of import paths.

The interface (`provisioning.cloud`) imports no provider; each provider module imports the
interface; this registry names the providers as strings and imports one on first use, so the
heavy SDKs (boto3, google-cloud-compute, azure-mgmt-network) load only for the clouds a run
touches, and no module imports back into the one that imports it.
"""

from __future__ import annotations

import importlib

from netconform.errors import TopologyError
from netconform.topology import Topology
from provisioning.cloud import CLOUD_NAMES, Provider

#: cloud name -> "module:attribute" of a callable taking the topology and returning a Provider
PROVIDERS: dict[str, str] = {
    "aws": "provisioning.aws:AwsProvider",
    "gcp": "provisioning.gcp:GcpProvider",
    "azure": "provisioning.azure:AzureProvider",
    "lab": "provisioning.lab.cloud:LabProvider",
}


def register(cloud: str, target: str) -> None:
    """Add (or replace) the provider of `cloud`: `target` is "package.module:Factory"."""
    module, sep, attr = target.partition(":")
    if not (module and sep and attr):
        raise ValueError(f"provider {target!r}: expected 'module:attribute'")
    PROVIDERS[cloud] = target


def provider_for(cloud: str, topology: Topology) -> Provider:
    """The provider for `cloud`, with default credentials and endpoints (SDKs import lazily)."""
    target = PROVIDERS.get(cloud)
    if target is None:
        known = ", ".join(sorted(set(CLOUD_NAMES) | set(PROVIDERS)))
        raise TopologyError(f"unknown cloud {cloud!r} (known: {known})")
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    provider: Provider = factory(topology)
    return provider
