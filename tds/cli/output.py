"""Printing for the CLI: results on stdout, errors as one line on stderr."""
from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
