"""The auditor's explorer: the gateway's HTML pages over the event index and the node (docs/explorer.md)."""
from tds.gateway.explorer.routes import explorer_routes

__all__ = ["explorer_routes"]
