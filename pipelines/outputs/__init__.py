"""Outputs for people and other tools: the HTML report, the FOCUS export and alert delivery (Slack, webhook, SMTP,
JSONL). Imports no Dagster.
"""
