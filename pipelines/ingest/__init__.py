"""Ingest: the feeds' landing files into the warehouse's raw tables, losing nothing.

Owns reading files (decompression, line splitting), the format readers (``formats/``, one module per feed), the
choice of reader for a landing, and staging a day's rows so that a run replaces the day in one transaction. Every
line is loaded or quarantined with its file, line and reason. Imports no Dagster.
"""
