"""Run the repository's command-line tools from tests, as a user would (a source checkout)."""
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_tool(script, *args, check=True, timeout=300):
    """``python <repo>/<script> <args>`` from the repository root; its stdout and stderr together.

    Args:
        check (bool): require exit status 0 (the assertion shows the end of both streams).
    """
    proc = subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 or not check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def last_metrics(log, keys=('mIoU', 'mBIoU')):
    """The last logged value of each metric in ``keys``, as ``{key: float}``."""
    return {key: float(re.findall(rf'\b{key}: ([0-9.]+)', log)[-1]) for key in keys}
