"""Helpers shared by the tests: one of each (`net.free_port`, `net.wait_port`,
`waiting.wait_for`), the worker tests' rows and settings (`worker`). Tests import these
modules, never `conftest` (pytest loads conftest itself)."""
