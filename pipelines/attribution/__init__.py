"""Attribution: each GPU's measured energy split across the requests running on it at each instant.

Owns the kernel entry (``kernel``), its engines behind one interface (``engine_api``; named in ``engines``:
``engine_numpy``, and ``engine_compiled`` with its numba loops in ``compiled_sweep`` and ``compiled_segments``),
the shared array and power-segment helpers (``arrays``, ``segments``), the output tables (``results``), the day
runner that feeds the kernel from the warehouse in device groups (``day``), the clock-skew check (``skew``) and the
ground-truth validation (``validation``). Pure Python, numpy, numba and Arrow; imports no Dagster.
"""
