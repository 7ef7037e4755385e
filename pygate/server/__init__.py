"""The running gateway (`pygate serve`): the Python side around the Rust core.

    serve.py             start and stop order: log store, core, shipper, admin listener
    reload.py            config reloads on SIGHUP or file change, swapped in one step
    admin_listener.py    the admin listener's aiohttp app: /status, /logs/*, /metrics, ...
    admin_guard.py       its middlewares: Host/Origin, token, expected gateway, body type
    admin_token.py       the admin token: configured, or generated once into a file
    browser_guard.py     Host/Origin rules for any local listener (also `logs serve`)
    gateway_identity.py  the headers a CLI command names its config and store with
    metrics.py           `GET /metrics`: Prometheus text
    upstream_health.py   target health for /status, /metrics, GET /upstreams/{name}/health
    admin_api/           the admin API on that listener: entity CRUD, state, audit, OpenAPI
    dashboard/           the self-refreshing reports page on that listener

The CLI's side of the admin connection is pygate/cli/admin_client.py; it imports
admin_token and gateway_identity from here, which import no aiohttp.
"""
