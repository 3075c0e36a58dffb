"""Every setting infercost reads from the environment, in one frozen object.

``current()`` reads the environment once and returns a ``Settings``; code takes the values it needs from that
object (or receives them as arguments) instead of reading ``os.environ`` itself. dbt receives the settings it uses as
``--vars`` (``Settings.dbt_vars``); ``dbt/dbt_project.yml`` repeats the defaults only so that a bare ``dbt build``
runs, and a test holds the two equal. The README's "Settings" table lists every variable below.

Imports nothing of the project: every layer may read it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# the defaults, named once; the kernel's and the validators' keyword defaults are these constants
DEFAULT_MAX_GAP_S = 5.0
DEFAULT_PROMPT_TOKEN_WEIGHT = 0.1
DEFAULT_IDLE_SHARING_POLICY = "proportional"
DEFAULT_PRICE_FILL_MAX_HOURS = 6.0
DEFAULT_START_DATE = "2026-01-01"
DEFAULT_DUCKDB_MEMORY = "4GB"
DEFAULT_LOCK_WAIT_S = 60.0
DEFAULT_COMPARISON_DAYS = 28
DEFAULT_DUPLICATE_WINDOW_DAYS = 7
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEFAULT_UI_PORT = 3000
IDLE_SHARING_POLICIES = ("none", "proportional", "even")
ENGINES = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[*]"
DEFAULT_ENERGY_PLACEMENT = "activity"
ENERGY_PLACEMENTS = ("activity", "flat")
LINE_READERS = ("duckdb", "python")


class SettingsError(ValueError):
    """An INFERCOST_* variable whose value cannot be used; the message names the variable and the fix."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number") from None


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = (env.get(name) or "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={value!r}: use true or false")


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 1) -> int | None:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number") from None
    if number < minimum:
        raise SettingsError(f"{name}={value!r}: use a whole number of at least {minimum}")
    return number


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name}={value!r} is not a port number (1 to 65535)")
    return int(value)


LABEL_KEY_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


def _labels(env: Mapping[str, str]) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in (env.get("INFERCOST_REQUEST_LABELS") or "").split(",") if k.strip())
    bad = [k for k in keys if not re.match(LABEL_KEY_PATTERN, k)]
    if bad:
        raise SettingsError(
            f"INFERCOST_REQUEST_LABELS: {', '.join(map(repr, bad))} is not a plain key (letters, digits, _ . -)"
        )
    return tuple(dict.fromkeys(keys))


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    return Path(value).resolve() if value else Path(default).resolve()


@dataclass(frozen=True)
class AlertSettings:
    """Alert sinks; secrets are kept out of repr so that a logged Settings never shows them."""

    slack_webhook_url: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "infercost@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = False
    jsonl_path: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        port = env.get("INFERCOST_ALERT_SMTP_PORT") or "25"
        try:
            smtp_port = int(port)
        except ValueError:
            raise SettingsError(f"INFERCOST_ALERT_SMTP_PORT={port!r} is not a port number") from None
        return cls(
            slack_webhook_url=env.get("INFERCOST_ALERT_SLACK_WEBHOOK_URL") or None,
            webhook_url=env.get("INFERCOST_ALERT_WEBHOOK_URL") or None,
            webhook_secret=env.get("INFERCOST_ALERT_WEBHOOK_SECRET") or None,
            smtp_host=env.get("INFERCOST_ALERT_SMTP_HOST") or None,
            smtp_port=smtp_port,
            smtp_user=env.get("INFERCOST_ALERT_SMTP_USER") or None,
            smtp_password=env.get("INFERCOST_ALERT_SMTP_PASSWORD") or None,
            smtp_from=env.get("INFERCOST_ALERT_SMTP_FROM") or "infercost@localhost",
            smtp_to=tuple(t.strip() for t in env.get("INFERCOST_ALERT_SMTP_TO", "").split(",") if t.strip()),
            smtp_starttls=env.get("INFERCOST_ALERT_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            jsonl_path=env.get("INFERCOST_ALERT_JSONL_PATH") or None,
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    """INFERCOST_HOME: the warehouse, the published copy, Dagster's home and alert state (default ./.infercost)."""
    warehouse: Path
    """INFERCOST_WAREHOUSE: the live DuckDB file Dagster and dbt share (default $INFERCOST_HOME/warehouse.duckdb)."""
    published: Path
    """INFERCOST_PUBLISHED: the read-only copy analysts query (default $INFERCOST_HOME/published/warehouse.duckdb)."""
    landing: Path
    """INFERCOST_LANDING: the folder the feeds' files land in (default the repo's sample_logs/)."""
    schemas_dir: Path
    """INFERCOST_SCHEMAS_DIR: the data contracts (default the repo's schemas/)."""
    config_dir: Path = Path(".infercost/config")
    """INFERCOST_CONFIG_DIR: formats.yaml and mapping files, apart from the landing folder others write to (default
    $INFERCOST_HOME/config)."""
    config_in_landing: bool = False
    """INFERCOST_CONFIG_IN_LANDING: also read formats.yaml and mapping files from the landing folder (only when no
    one but you can write there: a mapping is code)."""
    start_date: str = DEFAULT_START_DATE
    """INFERCOST_START_DATE: the first daily partition (YYYY-MM-DD)."""
    duckdb_memory: str = DEFAULT_DUCKDB_MEMORY
    """INFERCOST_DUCKDB_MEMORY: DuckDB's memory cap for every connection and dbt; past it DuckDB spills to disk."""
    line_reader: str = "duckdb"
    """INFERCOST_LINE_READER: how request JSONL and nvidia-smi CSV lines are read: duckdb (DuckDB's multithreaded
    reader where it gives exactly the Python reader's lines, else the Python reader) or python (always Python)."""
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S
    """INFERCOST_LOCK_WAIT_S: how long a writer (ingest, dbt, publish) waits for another process to let go of the
    live warehouse before failing with a message naming the file."""
    max_gap_s: float = DEFAULT_MAX_GAP_S
    """INFERCOST_MAX_GAP_S: telemetry gaps longer than this are unmetered, never filled."""
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT
    """INFERCOST_PROMPT_TOKEN_WEIGHT: a prompt token's weight against an output token in the energy split."""
    idle_sharing_policy: str = DEFAULT_IDLE_SHARING_POLICY
    """INFERCOST_IDLE_SHARING_POLICY: none, proportional or even (how idle cost reaches requests)."""
    energy_placement: str = DEFAULT_ENERGY_PLACEMENT
    """INFERCOST_ENERGY_PLACEMENT: activity or flat (where a sampling window's energy goes inside it)."""
    price_fill_max_hours: float = DEFAULT_PRICE_FILL_MAX_HOURS
    """INFERCOST_PRICE_FILL_MAX_HOURS: an unpublished price interval takes the nearest price at most this far away."""
    comparison_days: int = DEFAULT_COMPARISON_DAYS
    """INFERCOST_COMPARISON_DAYS: technique_savings and technique_comparison compare the requests of this many days up
    to the last loaded day (a window, so a nightly run does not reread the whole history)."""
    duplicate_window_days: int = DEFAULT_DUPLICATE_WINDOW_DAYS
    """INFERCOST_DUPLICATE_WINDOW_DAYS: a request_id already loaded within this many days of a run's day is a
    duplicate (quarantined); further apart it is another request (ids get reused), so the check reads a window of
    days, not the history."""
    raw_telemetry_retention_days: int | None = None
    """INFERCOST_RAW_TELEMETRY_RETENTION_DAYS: raw telemetry older than this many days before a run's last day is
    deleted from the lake (logged day by day); unset keeps it all. Marts are always kept."""
    request_labels: tuple[str, ...] = ()
    """INFERCOST_REQUEST_LABELS: request metadata keys kept as labels (comma-separated, e.g. project,feature,api_key),
    carried to fct_request_cost.labels, agg_daily_label_cost and FOCUS Tags."""
    focus_provider: str = "Self-hosted inference (infercost)"
    """INFERCOST_FOCUS_PROVIDER: FOCUS ProviderName/PublisherName."""
    focus_billing_account: str = "inference-fleet"
    """INFERCOST_FOCUS_BILLING_ACCOUNT: FOCUS BillingAccountId/Name."""
    engine: str = "duckdb"
    """INFERCOST_ENGINE: duckdb (one machine, the default) or spark (ingest of requests and telemetry and the
    attribution run on a Spark cluster and write the Parquet lake; the marts stay dbt-duckdb)."""
    spark_master: str = DEFAULT_SPARK_MASTER
    """INFERCOST_SPARK_MASTER: the Spark master the spark engine connects to (local[*], local-cluster[2,1,1024],
    spark://host:7077, k8s://https://..., yarn)."""
    bench_data: Path = REPO_ROOT / "bench_data"
    """INFERCOST_BENCH_DATA: where the benchmarks cache their generated inputs."""
    api_host: str = DEFAULT_API_HOST
    """INFERCOST_API_HOST: the address the allocation API listens on (`infercost api`, `infercost serve`); 0.0.0.0
    exposes it to the network (as in the container)."""
    api_port: int = DEFAULT_API_PORT
    """INFERCOST_API_PORT: the allocation API's port."""
    api_token: str | None = field(default=None, repr=False)
    """INFERCOST_API_TOKEN: when set, every API endpoint but /healthz asks for `Authorization: Bearer <token>`."""
    ui_host: str = DEFAULT_API_HOST
    """INFERCOST_UI_HOST: the address `infercost serve` runs the Dagster UI on."""
    ui_port: int = DEFAULT_UI_PORT
    """INFERCOST_UI_PORT: the Dagster UI's port under `infercost serve`."""
    schedule_running: bool = False
    """INFERCOST_SCHEDULE_RUNNING: the daily schedule (02:00 UTC) starts switched on (default false; `infercost
    serve` sets it true unless it is set)."""
    alerts: AlertSettings = field(default_factory=AlertSettings)
    """INFERCOST_ALERT_*: the alert sinks (see pipelines/outputs/alerts.py)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = _path(env, "INFERCOST_HOME", Path.cwd() / ".infercost")
        policy = env.get("INFERCOST_IDLE_SHARING_POLICY") or DEFAULT_IDLE_SHARING_POLICY
        if policy not in IDLE_SHARING_POLICIES:
            raise SettingsError(
                f"INFERCOST_IDLE_SHARING_POLICY={policy!r}: use one of {', '.join(IDLE_SHARING_POLICIES)}"
            )
        engine = (env.get("INFERCOST_ENGINE") or "duckdb").strip().lower()
        if engine not in ENGINES:
            raise SettingsError(f"INFERCOST_ENGINE={engine!r}: use one of {', '.join(ENGINES)}")
        placement = env.get("INFERCOST_ENERGY_PLACEMENT") or DEFAULT_ENERGY_PLACEMENT
        if placement not in ENERGY_PLACEMENTS:
            raise SettingsError(f"INFERCOST_ENERGY_PLACEMENT={placement!r}: use one of {', '.join(ENERGY_PLACEMENTS)}")
        line_reader = env.get("INFERCOST_LINE_READER") or "duckdb"
        if line_reader not in LINE_READERS:
            raise SettingsError(f"INFERCOST_LINE_READER={line_reader!r}: use one of {', '.join(LINE_READERS)}")
        return cls(
            home=home,
            warehouse=_path(env, "INFERCOST_WAREHOUSE", home / "warehouse.duckdb"),
            published=_path(env, "INFERCOST_PUBLISHED", home / "published" / "warehouse.duckdb"),
            landing=_path(env, "INFERCOST_LANDING", REPO_ROOT / "sample_logs"),
            schemas_dir=_path(env, "INFERCOST_SCHEMAS_DIR", REPO_ROOT / "schemas"),
            config_dir=_path(env, "INFERCOST_CONFIG_DIR", home / "config"),
            config_in_landing=_bool(env, "INFERCOST_CONFIG_IN_LANDING"),
            start_date=env.get("INFERCOST_START_DATE") or DEFAULT_START_DATE,
            duckdb_memory=env.get("INFERCOST_DUCKDB_MEMORY") or DEFAULT_DUCKDB_MEMORY,
            line_reader=line_reader,
            lock_wait_s=_float(env, "INFERCOST_LOCK_WAIT_S", DEFAULT_LOCK_WAIT_S),
            max_gap_s=_float(env, "INFERCOST_MAX_GAP_S", DEFAULT_MAX_GAP_S),
            prompt_token_weight=_float(env, "INFERCOST_PROMPT_TOKEN_WEIGHT", DEFAULT_PROMPT_TOKEN_WEIGHT),
            idle_sharing_policy=policy,
            energy_placement=placement,
            price_fill_max_hours=_float(env, "INFERCOST_PRICE_FILL_MAX_HOURS", DEFAULT_PRICE_FILL_MAX_HOURS),
            comparison_days=_int(env, "INFERCOST_COMPARISON_DAYS", DEFAULT_COMPARISON_DAYS),
            duplicate_window_days=_int(env, "INFERCOST_DUPLICATE_WINDOW_DAYS", DEFAULT_DUPLICATE_WINDOW_DAYS),
            raw_telemetry_retention_days=_int(env, "INFERCOST_RAW_TELEMETRY_RETENTION_DAYS", None, minimum=2),
            request_labels=_labels(env),
            focus_provider=env.get("INFERCOST_FOCUS_PROVIDER") or "Self-hosted inference (infercost)",
            focus_billing_account=env.get("INFERCOST_FOCUS_BILLING_ACCOUNT") or "inference-fleet",
            engine=engine,
            spark_master=env.get("INFERCOST_SPARK_MASTER") or DEFAULT_SPARK_MASTER,
            bench_data=_path(env, "INFERCOST_BENCH_DATA", REPO_ROOT / "bench_data"),
            api_host=env.get("INFERCOST_API_HOST") or DEFAULT_API_HOST,
            api_port=_port(env, "INFERCOST_API_PORT", DEFAULT_API_PORT),
            api_token=env.get("INFERCOST_API_TOKEN") or None,
            ui_host=env.get("INFERCOST_UI_HOST") or DEFAULT_API_HOST,
            ui_port=_port(env, "INFERCOST_UI_PORT", DEFAULT_UI_PORT),
            schedule_running=_bool(env, "INFERCOST_SCHEDULE_RUNNING"),
            alerts=AlertSettings.from_env(env),
        )

    @property
    def dbt_vars(self) -> dict:
        """The settings dbt's models read as vars (dbt_project.yml holds the same defaults for a bare dbt run)."""
        return {
            "prompt_token_weight": self.prompt_token_weight,
            "idle_sharing_policy": self.idle_sharing_policy,
            "price_fill_max_hours": self.price_fill_max_hours,
            "comparison_days": self.comparison_days,
        }

    @classmethod
    def variables(cls) -> list[str]:
        """Every environment variable a Settings reads (documented in the README's Settings table)."""
        names = {f.name: f"INFERCOST_{f.name.upper()}" for f in fields(cls) if f.name != "alerts"}
        alert_names = [f"INFERCOST_ALERT_{f.name.upper()}" for f in fields(AlertSettings)]
        return sorted(names.values()) + sorted(alert_names)


NOT_SETTINGS = ("INFERCOST_REALDATA",)
"""INFERCOST_* variables that are not settings of infercost: the tests' path to the third-party data."""


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """A line for each INFERCOST_* variable set that no setting reads (a misspelled name, whose value would be
    ignored), with the setting it most resembles."""
    import difflib

    env = os.environ if env is None else env
    known = Settings.variables()
    suffixes, lines = [k.removeprefix("INFERCOST_") for k in known], []
    for name in sorted(k for k in env if k.startswith("INFERCOST_") and k not in known and k not in NOT_SETTINGS):
        close = difflib.get_close_matches(name.removeprefix("INFERCOST_"), suffixes, n=1, cutoff=0.75)
        hint = f" (did you mean INFERCOST_{close[0]}?)" if close else " (the README's Configuration section lists them)"
        lines.append(f"{name} is not a setting infercost reads: its value is ignored{hint}")
    return lines


def environment() -> dict[str, str]:
    """The INFERCOST_* variables set now, for processes that must read the same settings (Spark's executors)."""
    return {k: v for k, v in os.environ.items() if k.startswith("INFERCOST_")}


def current() -> Settings:
    """The settings in force now, read from the environment (cheap; call it where a value is needed)."""
    return Settings.from_env()
