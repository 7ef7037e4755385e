"""The `pygate` command line: everything an operator runs in a shell.

    main.py            argument parsing and dispatch; `check` and `version` (the entry point)
    commands.py        `status`, `logs query`, and what the commands below share
    admin_client.py    the synchronous HTTP client for the admin listener (pygate/server/)
    admin_entities.py  `admin export|import`: entities of a running gateway as YAML
    bench.py           `bench URL`: the load generator in the core
    demo_upstream.py   `demo-upstream`: an upstream to try the gateway with

`logs report` and `logs serve` live with what they run (pygate/reports/command.py,
pygate/chserver/command.py). Nothing here imports aiohttp at import time: a command's
modules are imported when it runs, and admin_client takes from pygate/server/ only
admin_token and gateway_identity, which import no server code. So a command starts fast
and `pygate check` loads no server (tests/test_imports.py).
"""
