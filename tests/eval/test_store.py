"""The finished-rows store: a row comes back only to a run that would have computed the same thing."""

import json

import numpy as np
import pytest

from mcdm.eval.rows import Row
from mcdm.eval.store import RowStore
from mcdm.methods import MethodConfig

RUN = {"model": "abc", "n": 4, "seed": 0}
ROW = Row("particles", ("sketch", "text"), sampling={"method": MethodConfig(particles=2)})


def test_a_saved_row_comes_back_to_the_same_run_only(tmp_path):
    samples = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    RowStore(tmp_path, RUN, reuse=True).save(ROW, {"name": "particles", "figures": {"fd": 1.5}}, samples)
    result, back = RowStore(tmp_path, dict(RUN), reuse=True).load(ROW)
    assert result == {"name": "particles", "figures": {"fd": 1.5}} and np.array_equal(back, samples)
    assert RowStore(tmp_path, {**RUN, "seed": 1}, reuse=True).load(ROW) is None
    changed = Row("particles", ("sketch", "text"), sampling={"method": MethodConfig(particles=4)})
    assert RowStore(tmp_path, RUN, reuse=True).load(changed) is None  # same name, another method


def test_an_edited_record_is_recomputed_and_pickled_samples_are_never_loaded(tmp_path):
    store = RowStore(tmp_path, RUN, reuse=True)
    store.save(ROW, {"name": "particles"}, np.zeros((1, 2, 2, 3), np.uint8))
    record = tmp_path / f"{store.key(ROW)}.json"
    stored = json.loads(record.read_text())
    record.write_text(json.dumps({**stored, "run": {**RUN, "n": 8}}))
    assert store.load(ROW) is None
    record.write_text(json.dumps(stored))
    np.save(tmp_path / f"{store.key(ROW)}.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        store.load(ROW)
