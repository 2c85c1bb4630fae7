"""netconform core: topology, cluster access, vantages, probes and outcomes (no pytest here)."""
