"""``python -m fnn.distributed -n 2 train.py [args]``: ``mpiexec -n 2 python train.py [args]``
with the ``mpiexec`` beside this Python (the MPICH wheel installs it in the environment's
``bin``, which need not be on ``PATH``) and this Python, so the ranks run in the same
environment. Options before the script go to ``mpiexec`` (``-n 4``, ``-host 127.0.0.1``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def command(argv: list[str]) -> list[str]:
    """The ``mpiexec`` command line for ``argv`` (``mpiexec`` options, then the script and its
    arguments).

    >>> from fnn.distributed.__main__ import command
    >>> cmd = command(["-n", "2", "train.py", "--epochs", "3"])
    >>> cmd[1:3], cmd[4:]
    (['-n', '2'], ['train.py', '--epochs', '3'])
    """
    split = next((i for i, a in enumerate(argv) if a.endswith(".py")), None)
    if split is None:
        raise SystemExit("usage: python -m fnn.distributed [mpiexec options] script.py [args]")
    here = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(here) if here.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("fnn.distributed: no mpiexec found; pip install 'fnn[mpi]' brings one")
    return [mpiexec, *argv[:split], sys.executable, *argv[split:]]


if __name__ == "__main__":
    cmd = command(sys.argv[1:])
    os.execv(cmd[0], cmd)
