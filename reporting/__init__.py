"""radraft.reporting."""
