"""radraft.worker."""
