"""One bad-input contract on every backend (DESIGN.md, contract 7)."""

import numpy as np
import pytest

import xplearn
from backends import assert_in_backend, dtype_name
from xplearn._dispatch import Edge
from xplearn._validation import check_array, check_n_features


def _validate(X):
    edge, Xc = Edge.of(X)
    return edge.to_caller(check_array(Xc, edge.xp))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floats_kept(backend, dtype) -> None:
    data = np.arange(6, dtype=dtype).reshape(3, 2)
    out = _validate(backend.asarray(data))
    assert_in_backend(out, backend, dtype)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "uint8"])
def test_integers_become_default_float(backend, dtype) -> None:
    X = backend.asarray(np.ones((3, 2), dtype=dtype))
    edge, Xc = Edge.of(X)
    out = check_array(Xc, edge.xp)
    default = edge.xp.__array_namespace_info__().default_dtypes(device=edge.device)
    assert out.dtype == default["real floating"]


def test_float16_computes_in_float32(backend) -> None:
    if backend.name == "array_api_strict":
        pytest.skip("array_api_strict has no float16 dtype")
    edge, Xc = Edge.of(backend.asarray(np.ones((3, 2), dtype=np.float16)))
    assert dtype_name(check_array(Xc, edge.xp).dtype) == "float32"


def test_bfloat16_computes_in_float32(torch) -> None:
    edge, Xc = Edge.of(torch.ones(3, 2, dtype=torch.bfloat16))
    assert check_array(Xc, edge.xp).dtype == torch.float32


def test_device_without_float64(strict) -> None:
    dev = strict.Device("no_float64")
    X = strict.asarray(np.ones((3, 2), dtype=np.int64), device=dev)
    out = check_array(X, strict)
    assert out.dtype == strict.float32
    assert out.device == dev


def test_input_never_written(backend) -> None:
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    X = backend.asarray(data)
    _validate(X)
    np.testing.assert_array_equal(xplearn.to_numpy(X), data)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((3,), "Expected 2D array, got 1D array"), ((2, 2, 2), "Found array with dim 3")],
)
def test_not_2d(backend, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        _validate(backend.asarray(np.ones(shape)))


@pytest.mark.parametrize(
    ("shape", "match"), [((0, 3), "0 sample"), ((3, 0), "0 feature")]
)
def test_empty(backend, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        _validate(backend.asarray(np.ones(shape)))


@pytest.mark.parametrize(
    ("value", "kind"), [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]
)
def test_non_finite(backend, value, kind) -> None:
    data = np.ones((4, 3))
    data[2, 1] = value
    data[3, 0] = value
    with pytest.raises(
        ValueError,
        match=rf"Input X contains {kind}: 2 non-finite value\(s\), "
        "the first at row 2, column 1",
    ):
        _validate(backend.asarray(data))


def test_nan_and_inf_both_named(backend) -> None:
    data = np.ones((2, 2))
    data[0, 0], data[1, 1] = np.inf, np.nan
    with pytest.raises(ValueError, match="contains NaN and infinity"):
        _validate(backend.asarray(data))


def test_complex_rejected(backend) -> None:
    with pytest.raises(ValueError, match="Complex data not supported"):
        _validate(backend.asarray(np.ones((2, 2), dtype=np.complex128)))


def test_strings_rejected() -> None:
    with pytest.raises(ValueError, match="Encode categorical"):
        _validate(np.array([["a", "b"]]))


def test_object_numbers_converted() -> None:
    out = _validate(np.array([[1, 2.5]], dtype=object))
    assert out.dtype == np.float64


def test_feature_mismatch(backend) -> None:
    X = backend.asarray(np.ones((2, 3)))
    _edge, Xc = Edge.of(X)
    with pytest.raises(ValueError, match="X has 3 features, but the fitted data has 4"):
        check_n_features(Xc, 4)
