"""The edge: X decides, the others follow, results go back to X's framework."""

import numpy as np
import pytest

import xplearn
from backends import assert_close
from xplearn._dispatch import Edge


@xplearn.tensor_agnostic
def centre(X, y=None, *, xp):
    """A downstream function written once against xp."""
    mu = xp.mean(X, axis=0)
    if y is None:
        return X - mu
    return X - mu, y * 2


def test_decorator_returns_callers_framework(backend) -> None:
    data = np.arange(12, dtype=np.float64).reshape(4, 3)
    out = centre(backend.asarray(data))
    assert_close(out, data - data.mean(axis=0), backend, dtype="float64")


def test_decorator_follows_first_array(backend) -> None:
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    Xc, y2 = centre(backend.asarray(data), y)  # y is numpy: it follows X
    assert_close(Xc, data - data.mean(axis=0), backend, dtype="float32")
    assert_close(y2, 2 * y, backend, dtype="float32")


def test_decorator_tuple_dict_and_scalar_results(backend) -> None:
    @xplearn.tensor_agnostic
    def stats(X, *, xp):
        return {"sum": xp.sum(X, axis=0), "n": X.shape[0]}, [xp.max(X, axis=0)]

    data = np.arange(6.0).reshape(3, 2)
    d, lst = stats(backend.asarray(data))
    assert d["n"] == 3
    assert_close(d["sum"], data.sum(axis=0), backend)
    assert isinstance(lst, list)
    assert_close(lst[0], data.max(axis=0), backend)


def test_decorator_named_arrays_convert_lists() -> None:
    @xplearn.tensor_agnostic(arrays=("X",))
    def total(X, *, xp):
        return xp.sum(X)

    assert float(total([[1.0, 2.0], [3.0, 4.0]])) == 10.0


def test_decorator_requires_xp() -> None:
    with pytest.raises(TypeError, match="keyword argument 'xp'"):
        xplearn.tensor_agnostic(lambda X: X)


def test_decorator_requires_an_array() -> None:
    with pytest.raises(TypeError, match="without any array"):
        centre([[1.0]])


def test_decorator_hides_xp_from_signature() -> None:
    import inspect

    assert "xp" not in inspect.signature(centre).parameters


def test_follow_moves_other_frameworks(backend) -> None:
    edge, _X = Edge.of(backend.asarray(np.ones((3, 2))))
    y = edge.follow([0, 1, 2], "y")
    assert xplearn.get_namespace(y) is edge.xp
    assert xplearn.device(y) == edge.device


def test_mixed_frameworks_type_error(backend) -> None:
    other = np.ones((2, 2)) if backend.name != "numpy" else None
    if other is None:
        pytest.skip("needs a second framework than numpy")
    with pytest.raises(TypeError, match="different frameworks"):
        xplearn.get_namespace(backend.asarray(np.ones((2, 2))), other)


def test_mixed_devices_strict(strict) -> None:
    a = strict.asarray(np.ones((2, 2)))
    b = strict.asarray(np.ones((2, 2)), device=strict.Device("device1"))
    with pytest.raises(ValueError, match="different devices"):
        xplearn.get_namespace(a, b)
    edge, _ = Edge.of(b)
    with pytest.raises(ValueError, match="y is on device"):
        edge.follow(a, "y")


def test_mixed_devices_torch(torch) -> None:
    a = torch.ones(2, 2)
    b = torch.ones(2, 2, device="meta")
    with pytest.raises(ValueError, match="different devices"):
        xplearn.get_namespace(a, b)
    with pytest.raises(ValueError, match=r"to\(X.device\)"):
        centre(a, b)


def test_sparse_torch_type_error(torch) -> None:
    with pytest.raises(TypeError, match="to_dense"):
        xplearn.get_namespace(torch.eye(2).to_sparse())


def test_result_on_strict_second_device(strict) -> None:
    """A result built on the default device instead of X's fails here."""
    dev1 = strict.Device("device1")
    out = centre(strict.asarray(np.ones((2, 2)), device=dev1))
    assert out.device == dev1


def test_tf_input_with_numpy_follower(tf) -> None:
    Xc, y2 = centre(tf.ones((2, 2)), np.array([1.0, 2.0], dtype=np.float32))
    assert isinstance(Xc, tf.Tensor)
    assert isinstance(y2, tf.Tensor)
