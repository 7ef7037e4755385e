"""A copy of user-facing config data, walked by the schema type it is meant for.

Two jobs need this walk: the admin API's secret handling (apply a function to every
secret field: `config/secrets.py`) and the entity document's canonical form (drop the
nulls that stand for a default: `server/admin_api/document.py`). Both follow the same
shape (structs, a struct inside a union, lists, a route's plugins by their own
schemas) and differ only at a few points, which are the methods a subclass overrides.

The data need not be valid yet: anything that does not match the type is kept as it is.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pygate.config.convert import _is_struct, _list_item_type, _strip_annotated, _union_members
from pygate.config.paths import FieldPath


class TypedCopy:
    def copy(self, raw: Any, kind: Any, path: FieldPath = ()) -> Any:
        base = _strip_annotated(kind)
        if _is_struct(base):
            return self.struct(raw, base, path)
        members = _union_members(base)
        if members and isinstance(raw, dict):
            struct = next((m for m in members if _is_struct(m)), None)
            return self.struct(raw, struct, path) if struct is not None else raw
        item = _list_item_type(base)
        if item is not None and isinstance(raw, list):
            return [self.copy(entry, item, (*path, i)) for i, entry in enumerate(raw)]
        return self.other(raw, base, item, path)

    def struct(self, raw: Any, cls: type[msgspec.Struct], path: FieldPath) -> Any:
        if not isinstance(raw, dict):
            return raw
        from pygate.config.schema import Route  # schema imports this package's checks

        fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
        out: dict[str, Any] = {}
        for key, value in raw.items():
            info = fields.get(key)
            if info is None:
                out[key] = value
            elif not self.keep_field(value, info):
                continue
            elif cls is Route and key == "plugins" and isinstance(value, dict):
                out[key] = {
                    name: self.plugin(str(name), config, (*path, key, str(name)))
                    for name, config in value.items()
                }
            else:
                out[key] = self.copy(value, info.type, (*path, key))
        return out

    def plugin(self, name: str, config: Any, path: FieldPath) -> Any:
        from pygate.plugins import get_plugin  # plugins import config

        plugin = get_plugin(name)
        return config if plugin is None else self.copy(config, plugin.schema, path)

    # -- the points where the two jobs differ --

    def keep_field(self, value: Any, info: msgspec.structs.FieldInfo) -> bool:
        return True

    def other(self, raw: Any, kind: Any, list_item: Any, path: FieldPath) -> Any:
        """A value that is not a struct or a list of the type's items (a scalar, or data
        that does not match): kept."""
        return raw
