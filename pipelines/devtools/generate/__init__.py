"""A seeded generator of a realistic inference fleet, written in the file formats a real fleet produces.

* requests/<date>.jsonl.gz: one JSON object per request with an OpenAI-style ``usage`` object, timing fields and
  gateway metadata naming the serving replica and its techniques;
* telemetry/<host>_<date>.csv.gz: ``nvidia-smi --query-gpu=timestamp,index,uuid,name,power.draw,
  utilization.gpu,memory.used --format=csv,nounits -lms 1000`` output, one file per host and day, timestamps in
  UTC; power.draw is the 1 s average the driver reports;
* prices/<region>_<date>.csv: hourly day-ahead prices as ``Datetime,Price (<CUR>/MWh)``;
* carbon/<region>_<date>.csv: hourly grid carbon intensity as ``Datetime,Carbon Intensity (gCO2eq/kWh)``;
* fleet/*.csv: inventory, deployments, models, regions and fx_rates (the version-controlled fleet files).

Power and speed are calibrated to figures measured on an H100 SXM 80GB: idle about 71 W; an 8B model decoding at
batch 1 about 160 W and 9 J per output token; batch 8 about 260 W; batch 32 about 430 W and 1.2 J per output
token; prompt-lookup speculative decoding at batch 1 about 190 W and 6 J per output token; an MoE model at batch
16 about 440 W. Everything is vectorized per replica so that ``--devices 1000`` stays practical.

The package: fleet.py (device types, regions, models, replicas), simulate.py (load and power of a replica),
writers.py (the file formats), run.py (``generate``).
"""

from pipelines.devtools.generate.fleet import (
    CONFIG_EFFECT,
    DAY_S,
    DEVICE_TYPES,
    MODELS,
    REGIONS,
    TENANTS,
    DeviceType,
    Model,
    Region,
    Replica,
    build_fleet,
)
from pipelines.devtools.generate.run import Plant, generate
from pipelines.devtools.generate.simulate import (
    j_per_token,
    power_w,
    simulate_replica,
    time_per_token_s,
)

__all__ = [
    "CONFIG_EFFECT",
    "DAY_S",
    "DEVICE_TYPES",
    "MODELS",
    "REGIONS",
    "TENANTS",
    "DeviceType",
    "Model",
    "Plant",
    "Region",
    "Replica",
    "build_fleet",
    "generate",
    "j_per_token",
    "power_w",
    "simulate_replica",
    "time_per_token_s",
]
