"""The reference Celery worker: app, per-process loop and engine, DB task helper, tasks."""
