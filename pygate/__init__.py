"""pygate: an API gateway with a Rust data plane and call logs in ClickHouse (chDB).

The Rust core (`pygate._core`) serves traffic; this package loads and validates the
YAML config, ships call records to the log store and runs the admin listener.
"""

__version__ = "0.1.0"
