"""The MPI jobs of tests/test_distributed.py, run by ``mpiexec -n 2 python distributed_job.py
MODE OUT``; every rank runs it, rank 0 writes the results into the folder ``OUT``.

* ``equal``: 20 SGD and 20 Adam steps, with dropout and with batch-norm, float64, global batch
  32 over the ranks (params to ``OUT/<model>_<opt>.npz``); then rank 1 builds another model and
  both ranks must raise the same error (``OUT/disagree_<rank>.txt``).
* ``kill``: a checkpointed run whose rank 1 kills itself (SIGKILL) at step 13.
* ``fail``: a run whose rank 1 raises at step 5 (every rank must stop).
* ``resume``: the checkpointed run again (continues), and the same run never stopped.
* ``tokens``: a token model whose loss is a mean over the tokens that count (padding ignored,
  the ranks' rows holding different counts of it) and one whose loss is a sum
  (``OUT/tokens_<loss>.npz``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

import fnn
from fnn import distributed

N, BATCH = 160, 32  # 5 steps per epoch


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 6))
    return x, rng.integers(0, 3, N)


def model(kind: str, hidden: int = 8):
    if kind == "dropout":
        return fnn.serial(fnn.linear(hidden), fnn.tanh(), fnn.dropout(0.3), fnn.linear(3))
    # batch-norm after the activation: a bias right before it has a zero gradient, whose
    # rounding noise Adam would scale up to steps of the learning rate's size
    return fnn.serial(fnn.linear(hidden), fnn.tanh(), fnn.batch_norm(), fnn.linear(3))


def optimizer(kind: str):
    return fnn.sgd(0.1) if kind == "sgd" else fnn.adam(1e-2)


def start(net, opt):
    """A float64 TrainState with a dropout key."""
    _, params, state = fnn.init(net, fnn.key(1), (-1, 6))
    f64 = fnn.tree.tree_map(lambda a: a.astype(np.float64), {"p": params, "s": state})
    return fnn.TrainState.create(f64["p"], opt, fnn.key(2), f64["s"] if net.stateful else None)


def run(kind: str, opt_kind: str, comm, epochs=4, hidden=8, **kw):
    net, opt = model(kind, hidden), optimizer(opt_kind)
    step = distributed.supervised_step(net, fnn.cross_entropy, opt, comm=comm)
    step = kw.pop("wrap", lambda s: s)(step)
    x, y = data()
    return distributed.train(step, fnn.batches(x, y, batch_size=BATCH, rng=3), start(net, opt),
                             epochs=epochs, progress=False, comm=comm, **kw)


V, T = 7, 5  # token model: vocabulary (id 0 is padding), sequence length


def token_data():
    """Ids ``(N, T)`` and target ids padded with 0: the first half of every batch's rows
    count one token each, the second half all ``T``; so rank 0's rows count 16 tokens of a
    batch, rank 1's 80 (a plain mean over the ranks would weigh them alike)."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, V, (N, T))
    y = rng.integers(1, V, (N, T))
    y[np.arange(N) % BATCH < BATCH // 2, 1:] = 0
    return x, y


def token_loss(kind: str):
    return fnn.cross_entropy(ignore_index=0, reduction="sum" if kind == "sum" else "mean")


def token_start(opt):
    net = fnn.serial(fnn.embedding(V, 4), fnn.tanh(), fnn.linear(V))
    _, params = net.init(fnn.key(3), (-1, T))
    f64 = fnn.tree.tree_map(lambda a: a.astype(np.float64), params)
    return net, fnn.TrainState.create(f64, opt)


def run_tokens(kind: str, comm=None, epochs: int = 2):
    """The token model trained (SGD) on ``token_data``, over the ranks of ``comm`` or, with
    None, in one process with the whole batches."""
    opt = fnn.sgd(0.05 if kind == "sum" else 0.5)
    net, state = token_start(opt)
    x, y = token_data()
    data = fnn.batches(x, y, batch_size=BATCH, shuffle=False)  # rank 0: the padded rows
    if comm is None:
        step = fnn.supervised_step(net, token_loss(kind), opt)
        return fnn.train(step, data, state, epochs=epochs, progress=False)
    step = distributed.supervised_step(net, token_loss(kind), opt, comm=comm)
    return distributed.train(step, data, state, epochs=epochs, progress=False, comm=comm)


def dying(at: int, how: str):
    """The step of rank 1 dies before step ``at``: SIGKILL or an exception."""
    from mpi4py import MPI

    def wrap(step):
        def fn(state, batch):
            if MPI.COMM_WORLD.Get_rank() == 1 and state.step == at:
                if how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("rank 1 failed on purpose")
            return step.fn(state, batch)
        return step._replace(fn=fn)
    return wrap


def main(mode: str, out: Path) -> None:
    from mpi4py import MPI  # here: tests/test_distributed.py imports this module without MPI

    comm = MPI.COMM_WORLD
    me = comm.Get_rank()
    if mode == "equal":
        for kind in ("dropout", "bn"):
            for opt_kind in ("sgd", "adam"):
                state, hist = run(kind, opt_kind, comm)
                if me == 0:
                    fnn.save(out / f"{kind}_{opt_kind}.npz",
                             {"params": state.params, "loss": np.array(hist.train["loss"])})
        try:
            run("dropout", "sgd", comm, hidden=8 + me)
        except ValueError as err:
            (out / f"disagree_{me}.txt").write_text(str(err))
    elif mode in ("kill", "fail"):
        run("dropout", "adam", comm, checkpoint=out / "ckpt", checkpoint_every=4,
            wrap=dying(13 if mode == "kill" else 5, mode))
    elif mode == "tokens":
        for kind in ("mean", "sum"):
            state, hist = run_tokens(kind, comm)
            if me == 0:
                fnn.save(out / f"tokens_{kind}.npz",
                         {"params": state.params, "loss": np.array(hist.train["loss"])})
    elif mode == "resume":
        resumed, hist = run("dropout", "adam", comm, checkpoint=out / "ckpt",
                            checkpoint_every=4)
        straight, hist2 = run("dropout", "adam", comm)
        if me == 0:
            fnn.save(out / "resumed.npz", {"params": resumed.params,
                                           "loss": np.array(hist.train["loss"])})
            fnn.save(out / "straight.npz", {"params": straight.params,
                                            "loss": np.array(hist2.train["loss"])})
            (out / "resumed_from.txt").write_text(str(hist.resumed))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
