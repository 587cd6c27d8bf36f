"""Benchmarks: each prints a table (figure beside its baseline/target) and can emit JSON."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable


def emit(result: dict[str, Any], render: Callable[[dict[str, Any]], str], as_json: bool) -> int:
    """Record the machine, print the readable table on stderr and, with ``--json``, one JSON
    object on stdout; the exit code for ``main``."""
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(render(result), file=sys.stderr)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    return 0
