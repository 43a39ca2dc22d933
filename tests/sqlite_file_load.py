"""Run a load script (a `tests....` module printing JSON) in its own process on a SQLite file.

Tests of what parallel writers do need a real database file: the test database is in memory,
shared by one process, where no two writers can meet.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def sqlite_file_load(
    module: str, *args: str, var_dir: Path, timeout: float = 170, unset: tuple[str, ...] = ()
) -> Any:
    """The JSON that `python -m module args…` printed, run under the test settings with its
    SQLite database file in `var_dir` (the environment's DATABASE_* and `unset` names removed)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DATABASE_") and key not in unset
    }
    env.update(
        # Only the database moves: pages still find the front-end assets under var/.
        DATABASE_URL=f"sqlite:///{var_dir / 'load.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings.test",
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)
