"""fnn.ops.blas: small matrix products run on one BLAS thread, large ones as BLAS is set, and
the thread count is put back."""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fnn.ops import blas


def test_small_products_run_on_one_thread_and_put_the_count_back(monkeypatch):
    calls = []
    threads = [2]

    def get():
        return threads[0]

    def set_(n):
        calls.append(n)
        threads[0] = n

    monkeypatch.setattr(blas, "_switch", [(get, set_)])
    a, b = np.ones((32, 256)), np.ones((256, 100))
    np.testing.assert_array_equal(blas.matmul(a, b), a @ b)
    assert calls == [1, 2] and threads == [2]      # 819200 multiply-adds: small
    calls.clear()
    monkeypatch.setattr(blas, "SMALL_PRODUCT", 1000)
    blas.matmul(a, b)
    assert calls == []                              # large: as BLAS is set
    threads[0] = 1
    monkeypatch.setattr(blas, "SMALL_PRODUCT", 1 << 22)
    blas.matmul(a, b)
    assert calls == []                              # already one thread: nothing to change


def test_the_real_blas_threads_are_put_back():
    with threadpool_limits(2, user_api="blas"):
        blas.matmul(np.ones((4, 3)), np.ones((3, 2)))
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {2}


def test_products_blas_runs_on_one_thread_itself_are_not_switched(monkeypatch):
    calls = []
    threads = [2]
    monkeypatch.setattr(blas, "_switch", [(lambda: threads[0], calls.append)])
    a, b = np.ones((32, 100)), np.ones((100, 10))   # 32000 multiply-adds: one thread in BLAS
    np.testing.assert_array_equal(blas.matmul(a, b), a @ b)
    assert calls == []
    blas.matmul(np.ones(1000), np.ones((1000, 100)))  # a vector: BLAS's gemv splits it sooner
    assert calls == [1, 2]
