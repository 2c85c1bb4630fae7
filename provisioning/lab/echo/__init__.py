"""The pods' echo servers, one process per node (`worker`), fed by the daemon (`process`)."""
