"""One home for settings: the environment is read in pipelines/settings.py, dbt's defaults and the README agree."""

import re
from pathlib import Path

import pytest
import yaml

from pipelines.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[1]


def test_dbt_project_defaults_equal_the_settings_defaults():
    dbt_vars = yaml.safe_load((REPO / "dbt" / "dbt_project.yml").read_text())["vars"]
    defaults = Settings.from_env({}).dbt_vars
    assert set(defaults) <= set(dbt_vars)
    for name, value in defaults.items():
        assert dbt_vars[name] == value, name


def test_readme_documents_every_variable():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| (INFERCOST_[A-Z_]+) \|", readme, re.M))
    assert set(Settings.variables()) <= documented, set(Settings.variables()) - documented


def test_no_module_reads_infercost_variables_but_settings():
    offenders = []
    for path in (REPO / "pipelines").rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        if re.search(r"environ\.get\(\s*[\"']INFERCOST_|environ\[[\"']INFERCOST_\w+[\"']\](?!\s*=)", text):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_values_are_parsed_and_bad_values_named():
    s = Settings.from_env({"INFERCOST_HOME": "/tmp/x", "INFERCOST_MAX_GAP_S": "2.5"})
    assert s.warehouse == Path("/tmp/x/warehouse.duckdb") and s.max_gap_s == 2.5
    with pytest.raises(SettingsError, match="INFERCOST_MAX_GAP_S"):
        Settings.from_env({"INFERCOST_MAX_GAP_S": "five"})
    with pytest.raises(SettingsError, match="INFERCOST_IDLE_SHARING_POLICY"):
        Settings.from_env({"INFERCOST_IDLE_SHARING_POLICY": "fair"})
    served = Settings.from_env({"INFERCOST_API_PORT": "9000", "INFERCOST_SCHEDULE_RUNNING": "true"})
    assert served.api_port == 9000 and served.api_host == "127.0.0.1" and served.schedule_running
    for bad in ("http", "0", "70000"):
        with pytest.raises(SettingsError, match="INFERCOST_UI_PORT"):
            Settings.from_env({"INFERCOST_UI_PORT": bad})


def test_secrets_stay_out_of_repr():
    s = Settings.from_env(
        {
            "INFERCOST_ALERT_WEBHOOK_SECRET": "hunter2",
            "INFERCOST_ALERT_SMTP_PASSWORD": "pw9",
            "INFERCOST_API_TOKEN": "tok3n",
        }
    )
    assert "hunter2" not in repr(s) and "pw9" not in repr(s) and "tok3n" not in repr(s)


def test_a_misspelled_setting_is_named_with_the_setting_it_resembles():
    from pipelines.settings import unknown_variables

    env = {
        "INFERCOST_RAW_TELEMETRY_RETENTON_DAYS": "3",
        "INFERCOST_LANDNG": "/data",
        "INFERCOST_NOT_A_THING": "1",
        "INFERCOST_HOME": "/h",  # a setting
        "INFERCOST_REALDATA": "/r",  # the tests' data path, not a setting
        "HOME": "/root",
    }
    lines = unknown_variables(env)
    assert lines == [
        "INFERCOST_LANDNG is not a setting infercost reads: its value is ignored (did you mean INFERCOST_LANDING?)",
        "INFERCOST_NOT_A_THING is not a setting infercost reads: its value is ignored "
        "(the README's Configuration section lists them)",
        "INFERCOST_RAW_TELEMETRY_RETENTON_DAYS is not a setting infercost reads: its value is ignored "
        "(did you mean INFERCOST_RAW_TELEMETRY_RETENTION_DAYS?)",
    ]
    assert unknown_variables({k: v for k, v in env.items() if k in ("INFERCOST_HOME", "INFERCOST_REALDATA")}) == []


def test_the_cli_warns_of_a_misspelled_setting_and_goes_on(tmp_path):
    from tests.conftest import cli_env, run_cli

    env = cli_env(home=tmp_path, INFERCOST_COMPARISON_DAY="14")
    done = run_cli(["sql", "SELECT 42"], env=env, ok=False)
    first = done.stderr.splitlines()[0]
    assert first == (
        "infercost: warning: INFERCOST_COMPARISON_DAY is not a setting infercost reads: its value is ignored "
        "(did you mean INFERCOST_COMPARISON_DAYS?)"
    )
    assert "no published warehouse" in done.stderr  # the command itself still ran
