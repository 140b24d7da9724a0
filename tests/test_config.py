import threading

import pytest

import xplearn


def test_defaults() -> None:
    assert xplearn.get_config() == {
        "working_memory": None,
        "tf_namespace": "auto",
        "screening": "auto",
        "pruning": "auto",
    }


def test_context_restores_and_nests() -> None:
    with xplearn.config_context(working_memory=64):
        assert xplearn.get_config()["working_memory"] == 64
        with xplearn.config_context(tf_namespace="numpy"):
            assert xplearn.get_config() == {
                "working_memory": 64,
                "tf_namespace": "numpy",
                "screening": "auto",
                "pruning": "auto",
            }
        assert xplearn.get_config()["tf_namespace"] == "auto"
    assert xplearn.get_config()["working_memory"] is None


def test_context_restores_after_error() -> None:
    with pytest.raises(RuntimeError), xplearn.config_context(working_memory=8):
        raise RuntimeError
    assert xplearn.get_config()["working_memory"] is None


def test_set_config_changes_one_setting() -> None:
    xplearn.set_config(working_memory=128)
    try:
        assert xplearn.get_config() == {
            "working_memory": 128,
            "tf_namespace": "auto",
            "screening": "auto",
            "pruning": "auto",
        }
    finally:
        xplearn.set_config(working_memory=None)


def test_get_config_is_a_copy() -> None:
    cfg = xplearn.get_config()
    cfg["working_memory"] = 1
    assert xplearn.get_config()["working_memory"] is None


def test_threads_do_not_see_each_other() -> None:
    seen = {}
    barrier = threading.Barrier(2)

    def work(name, mib):
        with xplearn.config_context(working_memory=mib):
            barrier.wait()
            seen[name] = xplearn.get_config()["working_memory"]

    threads = [
        threading.Thread(target=work, args=(n, m)) for n, m in (("a", 1), ("b", 2))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"working_memory": 0}, ValueError, "positive"),
        ({"working_memory": -1.5}, ValueError, "positive"),
        ({"working_memory": True}, ValueError, "positive"),
        ({"tf_namespace": "jax"}, ValueError, "tf_namespace must be one of"),
        ({"screening": "bf16"}, ValueError, "screening must be one of"),
        ({"pruning": "on"}, ValueError, "pruning must be one of"),
        ({"colour": "red"}, TypeError, "Unknown xplearn setting"),
    ],
)
def test_bad_settings(kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match), xplearn.config_context(**kwargs):
        pass
