"""Helpers shared by the tests, one of each: `net` (free_port, wait_port), `waiting`
(wait_for), `processes` (stop_process), `data` (sample folders), `worker` (index rows and
settings for the worker tests). Tests import these modules, never `conftest` (pytest loads
conftest itself). The stand-in model backend is `radraft.reporting.model.stand_in` (the
benchmarks use it too)."""
