"""The Python twins of the core's native plugins, one file each (`<name>.py`, found by
the registry): the schema users write, the checks that need the route or the whole
config, and `to_core`, the plugin's value in the core route config. The plugin itself
(its config as the core reads it, the values it parses, its phase code) is
core-rs/src/plugins/<name>.rs. `jwks_refresh` is jwt's task while serving."""
