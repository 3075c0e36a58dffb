"""Reader choices live in one place ($INFERCOST_CONFIG_DIR/formats.yaml): what `ingest --format/--option` records
is what every later run of the feed reads with."""

import pytest
import yaml

from pipelines.ingest.feeds import resolve_landing_feed
from pipelines.ingest.formats import FORMATS
from pipelines.ingest.reader_choices import save_reader_choice
from pipelines.ingest.report import IngestError


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    monkeypatch.setenv("INFERCOST_CONFIG_DIR", str(folder))
    monkeypatch.delenv("INFERCOST_CONFIG_IN_LANDING", raising=False)
    return folder


def test_a_saved_choice_is_what_the_landing_resolves_to(landing, config_dir):
    path = save_reader_choice(None, "telemetry", "nvidia_smi_csv", {"timezone": "America/New_York"})
    assert path == config_dir / "formats.yaml"  # created with its folder
    feed = resolve_landing_feed("telemetry", landing)
    assert feed.reader is FORMATS["nvidia_smi_csv"] and feed.options == {"timezone": "America/New_York"}
    # options merge over what was recorded; the format stays
    save_reader_choice(config_dir, "telemetry", None, {"host": "palmetto"})
    feed = resolve_landing_feed("telemetry", landing)
    assert feed.options == {"timezone": "America/New_York", "host": "palmetto"}
    assert not (landing / "formats.yaml").exists()  # never written into the landing


def test_other_feeds_are_kept_and_a_new_format_drops_the_old_options(config_dir):
    save_reader_choice(config_dir, "requests", "litellm", {"model": "m"})
    save_reader_choice(config_dir, "telemetry", None, {"timezone": "UTC"})
    other = next(name for name in sorted(FORMATS) if name != "litellm")
    save_reader_choice(config_dir, "requests", other, {"replicas": "r0,r1"})
    config = yaml.safe_load((config_dir / "formats.yaml").read_text())
    assert config == {
        "requests": {"format": other, "options": {"replicas": "r0,r1"}},
        "telemetry": {"format": "nvidia_smi_csv", "options": {"timezone": "UTC"}},
    }
    assert not list(config_dir.glob(".formats.*"))  # no temporary file left behind


def test_a_landing_file_in_force_is_carried_over(landing, config_dir, monkeypatch):
    """With INFERCOST_CONFIG_IN_LANDING, the landing's formats.yaml is in force until the config directory has one:
    the first saved choice starts from it, so its other feeds keep their readers."""
    monkeypatch.setenv("INFERCOST_CONFIG_IN_LANDING", "true")
    (landing / "formats.yaml").write_text("requests: {format: litellm, options: {model: m}}\n")
    save_reader_choice(None, "telemetry", None, {"timezone": "UTC"}, landing=landing)
    assert resolve_landing_feed("requests", landing).reader is FORMATS["litellm"]
    assert resolve_landing_feed("telemetry", landing).options == {"timezone": "UTC"}


@pytest.mark.parametrize(
    "feed,fmt,message",
    [
        ("requests", "no_such_reader", "unknown format 'no_such_reader' for requests"),
        ("invoices", None, "unknown feed 'invoices'"),
    ],
)
def test_unknown_names_are_refused_and_nothing_is_written(config_dir, feed, fmt, message):
    with pytest.raises(IngestError, match=message):
        save_reader_choice(config_dir, feed, fmt, {})
    assert not (config_dir / "formats.yaml").exists()


def test_a_broken_file_is_named_and_left_alone(config_dir):
    config_dir.mkdir()
    (config_dir / "formats.yaml").write_text("requests: [unclosed\n")
    with pytest.raises(IngestError, match=r"formats\.yaml: not YAML"):
        save_reader_choice(config_dir, "requests", "litellm")
    assert (config_dir / "formats.yaml").read_text() == "requests: [unclosed\n"


def test_cli_ingest_keeps_its_reader_choice_for_the_next_run(tmp_path, landing):
    """The README's flow: `ingest --format/--option` once, then runs without them read the feed the same way."""
    from tests.conftest import REPO, run_cli

    src = REPO / "sample_logs" / "telemetry" / "us-west-h100-small-001_2026-11-02.csv.gz"
    (landing / "telemetry" / src.name).write_bytes(src.read_bytes())
    home, config = tmp_path / "home", tmp_path / "config"
    env_extra = {"INFERCOST_CONFIG_DIR": str(config)}
    from tests.conftest import cli_env

    env = cli_env(home=home, landing=landing, **env_extra)
    args = ["ingest", "--partition", "2026-11-02", "--feed", "telemetry"]
    first = run_cli([*args, "--format", "nvidia_smi_csv", "--option", "timezone=America/New_York"], env=env)
    assert f"kept in {config / 'formats.yaml'}" in first.stdout
    saved = yaml.safe_load((config / "formats.yaml").read_text())
    assert saved["telemetry"] == {"format": "nvidia_smi_csv", "options": {"timezone": "America/New_York"}}
    import duckdb

    def first_sample():
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            return con.execute("SELECT min(ts) FROM raw_telemetry").fetchall()[0][0]

    shifted = first_sample()
    run_cli(args, env=env)  # no options: the recorded ones apply
    assert first_sample() == shifted
    utc = run_cli([*args, "--option", "timezone=UTC"], env=env)  # the option changes what is read
    assert utc.returncode == 0 and (shifted - first_sample()).total_seconds() / 3600 in (4.0, 5.0)


def test_a_misspelled_option_is_refused_before_anything_is_read(tmp_path, landing):
    from tests.conftest import cli_env, run_cli

    env = cli_env(home=tmp_path / "home", landing=landing, INFERCOST_CONFIG_DIR=str(tmp_path / "config"))
    done = run_cli(
        ["ingest", "--partition", "2026-11-02", "--feed", "telemetry", "--option", "timezon=UTC"], env=env, ok=False
    )
    assert done.returncode == 1 and "unknown option 'timezon'" in done.stderr and "timezone" in done.stderr
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()
    assert not (tmp_path / "config" / "formats.yaml").exists()
