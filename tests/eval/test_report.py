import json

import numpy as np
import pytest

from vitr.eval.report import results_table, write_json


def test_results_table_formats_one_decimal_and_names_the_protocol():
    rows = [
        {"model": "meanP", "R1": 43.14, "MdR": np.float64(2.0), "n": np.int64(1000)},
        {"model": "seqTransf", "R1": 44.55, "MdR": float("nan"), "n": 1000},
    ]
    table = results_table(rows, ["model", "R1", "MdR", "n"], protocol="clip4clip", title="MSR-VTT 1k-A t2v")
    lines = table.splitlines()
    assert "MSR-VTT 1k-A t2v" in lines[0] and "clip4clip" in lines[0]
    assert lines[2] == "| model | R@1 | MdR | n |"
    assert lines[4] == "| meanP | 43.1 | 2.0 | 1000 |"
    assert lines[5] == "| seqTransf | 44.5 | – | 1000 |"


def test_results_table_requires_a_protocol():
    with pytest.raises(ValueError, match="protocol"):
        results_table([{"R1": 1.0}], ["R1"], protocol="")


def test_write_json_converts_numpy_values(tmp_path):
    path = write_json(tmp_path / "out" / "results.json", {"t2v": {"R1": np.float32(0.5), "n": np.int64(3)}})
    assert json.loads(path.read_text()) == {"t2v": {"R1": 0.5, "n": 3}}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
