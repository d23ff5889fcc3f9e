"""Run a script on two gloo processes under `torchrun`, as the DDP tests do.

Each rank reports through its own file, `<out_dir>/rank<r>.txt`: prints from two processes share
one stdout and can interleave mid-line, which made three of these tests flaky before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:  # other jobs on the machine may run torchrun too: no fixed port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(script: str, out_dir: Path, *args: str, timeout: float = 300) -> list[str]:
    """Write `script`, run it as `script out_dir *args` on 2 processes, return each rank's report.

    The script writes its report to `<argv[1]>/rank<RANK>.txt`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "ddp_script.py"
    path.write_text(script)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MIO_TRAIN_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(free_port()), str(path), str(out_dir), *args],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [(out_dir / f"rank{r}.txt").read_text() for r in (0, 1)]
