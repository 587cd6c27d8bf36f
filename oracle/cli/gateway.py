"""``tds gateway``: serve the FastAPI gateway (catalog, jobs, audit, auditor page)."""
from __future__ import annotations

from pathlib import Path

import click

from oracle.cli.output import console


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8600, show_default=True)
@click.option("--logs", "logs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of published operation-log batches the audit endpoints verify.")
def gateway(host: str, port: int, logs_dir: Path | None) -> None:
    """Serve the REST gateway; OpenAPI at /openapi.json, auditor page at /auditor."""
    import uvicorn

    from oracle.config import load_settings
    from oracle.gateway import create_app

    app = create_app(load_settings(), logs_dir=logs_dir)
    console.print(f"gateway on http://{host}:{port}  (auditor page /auditor, API docs /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
