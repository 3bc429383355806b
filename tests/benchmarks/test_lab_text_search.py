"""benchmarks/lab_text_search.py end to end on a few videos: the spoken set is found by its subtitles, hybrid
search keeps that, and a source this vitr cannot index is printed as not run, not an error."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_the_text_search_benchmark_measures_every_mode_on_every_set(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from vitr.backbones import load_backbone, save_backbone

    save_backbone(load_backbone("vitr-lab-tiny", random_init=True), tmp_path / "clip")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import lab_text_search
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = ["--out", str(tmp_path), "--clip", str(tmp_path / "clip"), "--videos", "6", "--text", "subtitles,sonar",
            "--no-doc"]
    assert lab_text_search.main(args) == 0
    out = capsys.readouterr().out
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line.split("|")[4].strip()
            for line in out.splitlines() if line.startswith("| ")}
    assert rows[("spoken", "text", "subtitles")] == "100"  # 3 speaking videos, each found by its words
    assert rows[("spoken", "hybrid (weighted)", "subtitles")] == "100"
    assert rows[("onscreen", "text", "subtitles")] == "0"  # on-screen words are not in the subtitles
    assert any(k[2] == "sonar" and v.startswith("not run: sonar not available") for k, v in rows.items())
    assert "R@1 %, visual -> hybrid (weighted, the default) with subtitles:" in out
