"""What `pygate serve` holds of the Python plugin runtime: the chains and the dispatcher.

Start: build the chains from the config (a plugin that cannot start is a config error),
start the dispatcher once the core listens. Reload: new chains are built and installed
*before* the core switches, so no call of the new config meets the old chains; if the
core refuses the config the old chains go back. Stop: after the core has drained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pygate.plugins.python.chains import Chains, build_chains
from pygate.plugins.python.dispatch import Dispatcher


class PluginRuntime:
    def __init__(self, gateway: Any, loaded: Any) -> None:
        """Raises ConfigError when a plugin of `loaded` cannot be instantiated."""
        self.dispatcher = Dispatcher(gateway, build_chains(loaded))

    @property
    def chains(self) -> Chains:
        return self.dispatcher.chains

    def start(self) -> None:
        """Call on the running loop, after the core started."""
        self.dispatcher.start()

    def swap(self, new: Any, swap_into_core: Callable[[Any], None]) -> None:
        """Install `new`'s chains and let `swap_into_core(new)` switch the core.

        Raises ConfigError (a plugin failed to start) or whatever swap_into_core raises,
        with the old chains back in place. Safe to call from a worker thread: installing
        chains is a single attribute assignment the loop thread sees whole.
        """
        previous = self.dispatcher.chains
        self.dispatcher.chains = build_chains(new, previous)
        try:
            swap_into_core(new)
        except BaseException:
            self.dispatcher.chains = previous
            raise

    async def stop(self, grace_s: float) -> None:
        await self.dispatcher.stop(grace_s)
