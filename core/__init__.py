"""radraft.core: settings, database, shared types. Imports nothing else of radraft."""
