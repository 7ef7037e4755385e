"""Checks of the `admin:` section that span its fields (schema.py holds the fields).

`auth: none` turns the admin token off. That is only allowed where nobody else can
connect: a loopback listen. A browser on the same machine is still kept out by the
Host and Origin rules (pygate/server/browser_guard.py), which apply whatever `auth` says.
"""

from __future__ import annotations

from collections.abc import Iterator

from pygate.config.paths import FieldPath
from pygate.config.schema import GatewayConfig
from pygate.config.state_url import is_postgres
from pygate.config.state_url import problem as state_url_problem
from pygate.config.units import is_loopback_listen

Finding = tuple[FieldPath, str]


def admin_problems(config: GatewayConfig) -> Iterator[Finding]:
    admin = config.admin
    if is_postgres(admin.state) and (why := state_url_problem(admin.state)) is not None:
        yield (("admin", "state"), why)
    if admin.auth != "none":
        return
    if not is_loopback_listen(admin.listen):
        yield (
            ("admin", "auth"),
            f'"none" is only allowed on a loopback admin listen (127.0.0.1, [::1]), '
            f'not "{admin.listen}": use a token (the default generates one)',
        )
    if admin.token or admin.tokens:
        field = "token" if admin.token else "tokens"
        yield (("admin", field), 'conflicts with admin.auth "none": remove one of the two')
