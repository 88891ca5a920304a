"""``GET /metrics``: the Prometheus exposition of every engine's pool and query metrics.

Answers only when ``APP_METRICS=true`` (404 otherwise). In multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) any worker's answer sums all workers. Example::

    $ APP_METRICS=true make run
    $ curl -s localhost:8000/metrics | grep kit_db_pool_connections
    kit_db_pool_connections{engine="primary",state="idle"} 1.0
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from pkg.database.metrics import render_prometheus

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Sync on purpose: reading the multiprocess files runs in the thread pool, not the loop."""
    settings = request.app.state.settings
    if settings is None or not settings.app_metrics:
        raise HTTPException(status_code=404, detail="metrics are off (APP_METRICS=false)")
    body, content_type = render_prometheus()
    return Response(content=body, media_type=content_type)
