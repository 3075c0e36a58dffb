"""The registry of attribution engines: the one place where an engine name becomes an engine.

* ``compiled``: one numba pass per device group (engine_compiled.py), the default when numba is installed;
* ``numpy``: vectorized numpy passes (engine_numpy.py).

Both implement the same rule (kernel.py), return the same typed results (engine_api.py) and are tested against
each other and a slow reference. The compiled engine is imported only when chosen (numba is optional).
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from pipelines.attribution.engine_api import Engine

ENGINE_MODULES = {
    "compiled": "pipelines.attribution.engine_compiled",
    "numpy": "pipelines.attribution.engine_numpy",
}


def numba_installed() -> bool:
    """Whether numba can be imported, looked up without importing it: importing it takes most of a second, which a
    first call spends in its warm-up thread (warmup.py)."""
    return find_spec("numba") is not None


def default_engine() -> str:
    """``compiled`` when numba is installed, else ``numpy``."""
    return "compiled" if numba_installed() else "numpy"


def engine_name(name: str | Engine | None = None) -> str:
    """The name of the engine get_engine returns, without importing it."""
    if isinstance(name, Engine):
        return name.name
    name = name or default_engine()
    if name not in ENGINE_MODULES:
        raise ValueError(f"engine must be 'compiled' or 'numpy', not {name!r}")
    return name


def get_engine(name: str | Engine | None = None) -> Engine:
    """The engine of that name (None: the default engine); an Engine is returned as it is."""
    if isinstance(name, Engine):
        return name
    return import_module(ENGINE_MODULES[engine_name(name)]).ENGINE
