import numpy as np
import pytest

import xplearn
from backends import assert_equal

DTYPES = ["float32", "float64", "int64", "bool"]


def _data(dtype: str) -> np.ndarray:
    return (np.arange(12).reshape(4, 3) % 5).astype(dtype)


def _ptr(x) -> int:
    """Address of the first element, whatever the framework (CPU only)."""
    name = type(x).__module__.partition(".")[0]
    if name == "torch":
        return x.data_ptr()
    return np.from_dlpack(x).ctypes.data


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_numpy(backend, dtype) -> None:
    data = _data(dtype)
    got = xplearn.to_numpy(backend.asarray(data))
    assert isinstance(got, np.ndarray)
    assert got.dtype == data.dtype
    np.testing.assert_array_equal(got, data)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_through_numpy(backend, dtype) -> None:
    """backend → numpy → backend keeps namespace, device, dtype and values."""
    data = _data(dtype)
    x = backend.asarray(data)
    np_xp = xplearn.get_namespace(data)
    as_np = xplearn.to_namespace(x, np_xp)
    assert isinstance(as_np, np.ndarray)
    target = (
        backend.module if backend.name == "tensorflow" else xplearn.get_namespace(x)
    )
    back = xplearn.to_namespace(
        as_np, target, device=None if backend.name == "tensorflow" else backend.device
    )
    assert_equal(back, data, backend, dtype=dtype)


def test_same_namespace_is_no_copy(backend) -> None:
    x = backend.asarray(_data("float32"))
    if backend.name == "tensorflow":
        # TF → compute namespace → TF shares one buffer all the way.
        assert _ptr(xplearn.to_namespace(x, backend.module)) == _ptr(x)
    else:
        assert (
            xplearn.to_namespace(x, xplearn.get_namespace(x), device=backend.device)
            is x
        )


def test_strict_second_device(strict) -> None:
    x = strict.asarray(_data("float64"))
    dev1 = strict.Device("device1")
    moved = xplearn.to_namespace(x, strict, device=dev1)
    assert moved.device == dev1
    np.testing.assert_array_equal(xplearn.to_numpy(moved), _data("float64"))


def test_numpy_to_torch_zero_copy(torch) -> None:
    a = _data("float32")
    t = xplearn.to_namespace(a, xplearn.get_namespace(torch.ones(1)))
    assert t.data_ptr() == a.ctypes.data


def test_torch_to_numpy_zero_copy(torch) -> None:
    t = torch.arange(6.0).reshape(2, 3)
    assert xplearn.to_numpy(t).ctypes.data == t.data_ptr()


def test_tf_to_torch_zero_copy(tf, torch) -> None:
    t = tf.constant(_data("float32"))
    with xplearn.config_context(tf_namespace="torch"):
        tt = xplearn.to_namespace(t, xplearn.get_namespace(torch.ones(1)))
    assert isinstance(tt, torch.Tensor)
    assert tt.data_ptr() == _ptr(t)


def test_tf_to_numpy_zero_copy(tf) -> None:
    t = tf.constant(_data("float64"))
    with xplearn.config_context(tf_namespace="numpy"):
        a = xplearn.to_namespace(t, xplearn.get_namespace(np.ones(1)))
    assert isinstance(a, np.ndarray)
    assert a.ctypes.data == _ptr(t)
    assert not a.flags.writeable, "a numpy view of a TF tensor must be read-only"


def test_torch_to_tf_zero_copy(tf, torch) -> None:
    r = torch.arange(12.0).reshape(4, 3)
    t = xplearn.to_namespace(r, tf)
    assert isinstance(t, tf.Tensor)
    assert _ptr(t) == r.data_ptr()


def test_numpy_to_tf_zero_copy(tf) -> None:
    a = _data("float64")
    t = xplearn.to_namespace(a, tf)
    assert isinstance(t, tf.Tensor)
    assert _ptr(t) == a.ctypes.data


def test_non_contiguous_to_tf(tf, torch) -> None:
    """TF rejects non-C-contiguous DLPack strides: results are made contiguous."""
    r = torch.arange(12.0).reshape(3, 4).T
    t = xplearn.to_namespace(r, tf)
    np.testing.assert_array_equal(t.numpy(), r.numpy())


def test_sparse_scipy_rejected() -> None:
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="dense data is required"):
        xplearn.to_numpy(sp.csr_matrix(np.eye(2)))


def test_lazy_to_numpy_computes(backend) -> None:
    """Results of lazy (dask) expressions come out computed, as numpy."""
    x = backend.asarray(_data("float64"))
    got = xplearn.to_numpy(x * 2)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, 2 * _data("float64"))
