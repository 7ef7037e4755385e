"""The "trivial Python access plugin" of the py_access scenario: one header added per call.

The gateway imports it by module path (benchmarks.suite.plugin_stamp:Stamp); the suite
puts the repository on the gateway's PYTHONPATH.
"""

from pygate.plugins.python import Plugin, Request


class Stamp(Plugin):
    async def access(self, request: Request) -> None:
        request.headers["x-stamp"] = "1"
