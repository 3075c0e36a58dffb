"""Attribution: each GPU's measured energy split across the requests running on it at each instant.

Owns the kernel entry (``kernel``), the compiled sweep (``engine_compiled``), the day runner that feeds it from the
warehouse in device groups (``day``), the clock-skew check (``skew``) and the ground-truth validation
(``validation``). Pure Python, numpy, numba and Arrow; imports no Dagster.
"""
