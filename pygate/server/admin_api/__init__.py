"""The admin API: live CRUD over upstreams, routes, consumers (and their keys) and
route plugin configs, on the admin listener (pygate/server/admin_listener.py, same token
check).

Where the entities live, and who wins
-------------------------------------
Entities are kept in an embedded SQLite file, `admin.state` (default
`pygate-admin.db`, relative to the config file's directory), with a fingerprint of
the config file's own entities (its `upstreams`, `consumers` and `routes`) (statedb.py);
or, with `admin.state: postgresql://...`, in Postgres, shared by every node
(pgstate.py, the same calls; state_watch.py follows the other nodes' writes):

- First start (no state yet): the state is seeded from the file's entities.
- Later starts and reloads (SIGHUP, `serve --watch`): if the file's entities are
  unchanged since they were last imported, the state is the source of truth, so a
  restart keeps every admin API change. If they changed (somebody edited the file),
  the file wins: its entities replace the state. GitOps users who edit the file
  keep control; API users keep their changes as long as nobody edits the entities
  in the file.
- Every import from the file is audited, with actor `file:<absolute path>`.
- Process settings (listen, workers, limits, log, admin, ...) always come from the
  file; the API changes entities only.

A change goes live like a reload: validated as a whole with the file's settings
(the loader's schema and plugin checks, then the core's compile), swapped into the
core atomically (requests in flight finish on the old config) and into the Python
side, then stored with its audit rows in one transaction. Changes and reloads take
the same lock, one at a time.

Endpoints: http_entities.py (CRUD), http_subresources.py (keys, plugins),
http_config.py (export/import, audit, plugins, OpenAPI), added to the listener by
routes.py. Errors: errors.py. Its client, the `pygate admin export|import` commands, is
pygate/cli/admin_entities.py.
"""
