"""The TensorFlow bridge: eager tensors in and out, clear errors for the rest."""

import numpy as np
import pytest

import xplearn


@xplearn.tensor_agnostic
def _double(X, *, xp):
    return X * 2


@pytest.mark.parametrize("tf_namespace", ["torch", "numpy"])
def test_eager_round_trip(tf, tf_namespace) -> None:
    if tf_namespace == "torch":
        pytest.importorskip("torch")
    x = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    with xplearn.config_context(tf_namespace=tf_namespace):
        assert xplearn.get_namespace(x).__name__.endswith(tf_namespace)
        out = _double(x)
    assert isinstance(out, tf.Tensor)
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), 2 * x.numpy())


def test_variable_is_read(tf) -> None:
    v = tf.Variable(np.ones((2, 2)))
    out = _double(v)
    assert isinstance(out, tf.Tensor)
    np.testing.assert_array_equal(out.numpy(), 2.0)


def test_bfloat16_computes_in_float32_returns_bfloat16(tf) -> None:
    x = tf.constant([[1.5, 2.0]], dtype=tf.bfloat16)
    seen = {}

    @xplearn.tensor_agnostic
    def spy(X, *, xp):
        seen["dtype"] = str(X.dtype)
        return X + 1

    out = spy(x)
    assert "float32" in seen["dtype"]
    assert out.dtype == tf.bfloat16
    np.testing.assert_array_equal(out.numpy().astype(np.float32), [[2.5, 3.0]])


def test_string_tensor_does_not_abort(tf) -> None:
    """DLPack export of a string tensor aborts TF's process; we never try it."""
    labels = xplearn.to_numpy(tf.constant(["a", "b"]))
    assert labels.tolist() == [b"a", b"b"]


def test_int_results_are_int64(tf) -> None:
    @xplearn.tensor_agnostic
    def argmax(X, *, xp):
        return xp.astype(xp.argmax(X, axis=1), xp.int64)

    out = argmax(tf.constant([[0.0, 2.0], [3.0, 1.0]]))
    assert out.dtype == tf.int64
    np.testing.assert_array_equal(out.numpy(), [1, 0])


def test_symbolic_tensor_type_error(tf) -> None:
    @tf.function
    def graph(x):
        return _double(x)

    with pytest.raises(TypeError, match="symbolic TensorFlow tensor"):
        graph(tf.ones((2, 2)))


@pytest.mark.parametrize("kind", ["ragged", "sparse", "indexed_slices"])
def test_composite_tensors_type_error(tf, kind) -> None:
    if kind == "ragged":
        x, match = tf.ragged.constant([[1.0], [2.0, 3.0]]), "RaggedTensor"
    elif kind == "sparse":
        x, match = tf.sparse.from_dense(tf.eye(2)), "tf.sparse.to_dense"
    else:
        x, match = tf.IndexedSlices(tf.ones((1, 2)), tf.constant([0])), "IndexedSlices"
    with pytest.raises(TypeError, match=match):
        xplearn.get_namespace(x)
    with pytest.raises(TypeError, match=match):
        _double(x)


def test_tf_namespace_torch_without_torch(tf, monkeypatch) -> None:
    from xplearn import _tensorflow

    monkeypatch.setattr(_tensorflow, "_torch_installed", lambda: False)
    assert _tensorflow.compute_backend() == "numpy"
    with (
        xplearn.config_context(tf_namespace="torch"),
        pytest.raises(ImportError, match="torch is not installed"),
    ):
        _tensorflow.compute_backend()
