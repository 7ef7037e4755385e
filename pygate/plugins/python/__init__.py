"""Python plugins: the author API and the runtime that runs plugins for the core.

Author API (what a plugin imports):

    from pygate.plugins.python import Headers, Plugin, Refuse, Request, Response

Runtime: `loading` resolves plugin implementations, `chains` builds each route's
plugins in config order, `dispatch` takes the core's plugin calls off the asyncio
loop and replies to them.
"""

from pygate.plugins.python.headers import Headers
from pygate.plugins.python.plugin import NoConfig, Plugin, Refuse
from pygate.plugins.python.request import Request
from pygate.plugins.python.response import Response, StreamedBodyError

__all__ = [
    "Headers",
    "NoConfig",
    "Plugin",
    "Refuse",
    "Request",
    "Response",
    "StreamedBodyError",
]
