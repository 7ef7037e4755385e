"""Built-in Python plugins, one file each (found by the registry), run by the Python
plugin runtime (pygate/plugins/python/); `transform_ops` is the transformers' and
mock's shared header and JSON edits."""
