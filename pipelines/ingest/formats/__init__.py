"""Parsers from the file formats fleets write to the canonical columns of schemas/, one module per feed
(and per family of formats: arrival-only traces, DCGM).

``FORMATS`` names every reader ``infercost ingest --format`` and ``$INFERCOST_CONFIG_DIR/formats.yaml``
accept (pipelines/ingest/formats/config.py). Each reader lists the option keys it takes in ``option_names``;
``check_options(reader, options)`` refuses any other in one line (every reader calls it as it parses; a caller may
call it earlier, e.g. before a run touches any table).
"""

from pathlib import Path

from pipelines.ingest.formats.arrival import AzureTraceCsv, MooncakeJsonl
from pipelines.ingest.formats.common import ParseContext, check_options, validation_sql
from pipelines.ingest.formats.dcgm import DcgmPrometheusText, PrometheusRangeJson
from pipelines.ingest.formats.fleet import FleetCsv
from pipelines.ingest.formats.mapping import MappedFile
from pipelines.ingest.formats.prices import CarbonIntensityCsv, MarketPriceCsv
from pipelines.ingest.formats.requests import (
    LiteLlmSpendLogs,
    OpenAIJsonl,
    OtelGenAiSpans,
)
from pipelines.ingest.formats.telemetry import NvidiaSmiCsv

FORMATS = {
    "openai_jsonl": OpenAIJsonl(),
    "nvidia_smi_csv": NvidiaSmiCsv(),
    "market_csv": MarketPriceCsv(),
    "carbon_csv": CarbonIntensityCsv(),
    "azure_trace_csv": AzureTraceCsv(),
    "mooncake_jsonl": MooncakeJsonl(),
    "litellm": LiteLlmSpendLogs(),
    "otel_genai_json": OtelGenAiSpans(),
    "dcgm_prometheus": DcgmPrometheusText(),
    "prometheus_range_json": PrometheusRangeJson(),
    "mapped": MappedFile(),  # any other shape, through the user's mapping file (option mapping=...)
}
# formats that are a mapping file shipped here (formats/mappings/<name>.yaml)
FORMATS.update({p.stem: MappedFile(p) for p in sorted((Path(__file__).parent / "mappings").glob("*.yaml"))})

__all__ = ["FORMATS", "FleetCsv", "ParseContext", "check_options", "validation_sql"]
