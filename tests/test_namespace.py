import numpy as np
import pytest

import xplearn
from xplearn._namespace import backend_name, is_array, namespace_name


def test_backend_detected(backend) -> None:
    x = backend.asarray(np.ones((2, 3)))
    assert backend_name(x) == backend.name
    assert is_array(x)


def test_namespace_of_backend(backend) -> None:
    xp = xplearn.get_namespace(backend.asarray(np.ones((2, 3))))
    expected = {"tensorflow": None}.get(backend.name, backend.name)
    if expected is None:  # TF computes on torch when installed, else numpy
        assert namespace_name(xp) in {"torch", "numpy"}
    else:
        assert namespace_name(xp) == expected


def test_device_of_backend(backend) -> None:
    x = backend.asarray(np.ones((2, 3)))
    assert xplearn.device(x) == backend.device


@pytest.mark.parametrize("obj", [[[1.0, 2.0]], ((1.0, 2.0),)], ids=["list", "tuple"])
def test_sequences_are_numpy(obj) -> None:
    assert namespace_name(xplearn.get_namespace(obj)) == "numpy"


def test_pandas_is_numpy() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert namespace_name(xplearn.get_namespace(df)) == "numpy"
    assert namespace_name(xplearn.get_namespace(df["a"])) == "numpy"


def test_none_and_scalars_ignored() -> None:
    x = np.ones(2)
    assert xplearn.get_namespace(None, 3.0, x, 1).__name__ == "array_api_compat.numpy"


def test_no_array_is_type_error() -> None:
    with pytest.raises(TypeError, match="at least one array"):
        xplearn.get_namespace(None, 2)


def test_unknown_object_is_type_error() -> None:
    with pytest.raises(TypeError, match="must be an array"):
        xplearn.get_namespace(object())


def test_detection_cached_per_type() -> None:
    from xplearn._namespace import _TYPE_CACHE

    _TYPE_CACHE.pop(np.ndarray, None)
    backend_name(np.ones(1))
    assert _TYPE_CACHE[np.ndarray] == "numpy"


def test_subclass_detected() -> None:
    class MyArray(np.ndarray):
        pass

    assert backend_name(np.ones(2).view(MyArray)) == "numpy"
