"""Name -> implementation registries for metrics, search spaces and search algorithms.

Each pluggable thing lives in its own module and registers itself with a decorator::

    @register_metric("fnorm", direction=+1, needs=("ntk",), log_axis=True)
    def fnorm(ctx): ...

The modules are imported by ``ntkexp.metrics``, ``ntkexp.spaces``, ``ntkexp.search`` and ``ntkexp.tasks``, each the
one place that lists them. Looking up an unknown name raises :class:`UnknownNameError` listing the valid names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")
#: said with every unknown name: how a user's own implementation becomes known
PLUGIN_HINT = ("(one of your own registers itself when its module is imported: plugins=[<module>] or an "
               "ntkexp.plugins entry point)")


class UnknownNameError(KeyError):
    """An unknown registry key; the message names every valid choice."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass
class Registry(Generic[T]):
    """A named collection of implementations of one kind (``kind`` is used in error messages)."""

    kind: str
    _items: dict[str, T] = field(default_factory=dict)

    def register(self, name: str, obj: T) -> T:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plug-in that is no longer wanted, e.g. one a test registered); unknown names are ignored."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))} {PLUGIN_HINT}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


#: the entry-point group through which an installed package adds metrics, spaces, algorithms or tasks
PLUGIN_GROUP = "ntkexp.plugins"


class PluginError(ValueError):
    """A plug-in module that cannot be imported (the message names it and why)."""


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Import every module registered under the ``ntkexp.plugins`` entry-point group by an installed package, then
    ``modules`` (dotted names, e.g. a run's ``plugins=[mypkg.metrics]``); importing one runs its ``register_*``
    calls. Returns the names imported (a module already imported is not imported again)."""
    import importlib
    import sys
    from importlib.metadata import entry_points

    found = [(f"entry point {ep.name} = {ep.value}", ep.value.split(":")[0]) for ep in entry_points(group=PLUGIN_GROUP)]
    found += [(f"plugins=[{name}]", name) for name in modules]
    loaded = []
    for origin, module in found:
        if module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 - any failure inside a user's module is reported in one line
            raise PluginError(f"the plug-in module {module!r} ({origin}) cannot be imported: "
                              f"{type(err).__name__}: {err}") from None
        loaded.append(module)
    return loaded
