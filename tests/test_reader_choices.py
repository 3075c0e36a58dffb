"""A landing's reader choices live in one place (formats.yaml): what `ingest --format/--option` records is what
every later run of the landing reads with."""

import pytest
import yaml

from pipelines.ingest.feeds import resolve_landing_feed
from pipelines.ingest.formats import FORMATS
from pipelines.ingest.reader_choices import save_reader_choice
from pipelines.ingest.report import IngestError


def _other_format(feed_default: str) -> str:
    return next(name for name in sorted(FORMATS) if name != feed_default)


def test_a_saved_choice_is_what_the_landing_resolves_to(landing):
    path = save_reader_choice(landing, "telemetry", "nvidia_smi_csv", {"timezone": "America/New_York"})
    assert path == landing / "formats.yaml"
    feed = resolve_landing_feed("telemetry", landing)
    assert feed.reader is FORMATS["nvidia_smi_csv"] and feed.options == {"timezone": "America/New_York"}
    # options merge over what was recorded; the format stays
    save_reader_choice(landing, "telemetry", None, {"host": "palmetto"})
    feed = resolve_landing_feed("telemetry", landing)
    assert feed.options == {"timezone": "America/New_York", "host": "palmetto"}


def test_other_feeds_are_kept_and_a_new_format_drops_the_old_options(landing):
    save_reader_choice(landing, "requests", "litellm", {"model": "m"})
    save_reader_choice(landing, "telemetry", None, {"timezone": "UTC"})
    other = _other_format("litellm")
    save_reader_choice(landing, "requests", other, {"replicas": "r0,r1"})
    config = yaml.safe_load((landing / "formats.yaml").read_text())
    assert config == {"requests": {"format": other, "options": {"replicas": "r0,r1"}},
                      "telemetry": {"format": "nvidia_smi_csv", "options": {"timezone": "UTC"}}}
    assert not list(landing.glob(".formats.*"))  # no temporary file left behind


@pytest.mark.parametrize("feed,fmt,message", [
    ("requests", "no_such_reader", "unknown format 'no_such_reader' for requests"),
    ("invoices", None, "unknown feed 'invoices'"),
])
def test_unknown_names_are_refused_and_nothing_is_written(landing, feed, fmt, message):
    with pytest.raises(IngestError, match=message):
        save_reader_choice(landing, feed, fmt, {})
    assert not (landing / "formats.yaml").exists()
