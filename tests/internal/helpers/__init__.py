"""Helpers for the process tests: subprocesses, free ports and pg_stat_activity."""
