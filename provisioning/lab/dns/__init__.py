"""The lab's cluster DNS: a CoreDNS work-alike on dnspython (see `controllers.cluster_dns`)."""
