"""HTTP gateway (FastAPI): catalog, jobs and audit queries over the chain, and the auditor page."""
from tds.gateway.app import create_app

__all__ = ["create_app"]
