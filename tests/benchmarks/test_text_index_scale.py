"""benchmarks/text_index_scale.py at a tiny size: both lexical indexes find exactly the spans that hold a word,
and the script prints its table (FTS5 alone, said so, where tantivy is not installed)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import text_index_scale
    finally:
        sys.path.remove(str(BENCHMARKS))
    return text_index_scale


def test_spans_are_seeded_subtitle_lines_over_a_zipf_vocabulary(bench) -> None:  # noqa: ANN001
    vocab = bench.vocabulary(5_000, seed=0)
    assert len(set(vocab)) == 5_000
    spans = bench.generate_spans(3_000, 60, vocab, seed=0)
    assert spans == bench.generate_spans(3_000, 60, vocab, seed=0)
    assert all(5 <= len(text.split()) <= 15 for *_, text in spans)
    assert len({video for video, *_ in spans}) > 50
    words = [w.strip(".?!,").lower() for *_, text in spans for w in text.split()]
    assert words.count(vocab[0]) > 10 * words.count(vocab[100]) > 0  # rank 1 far more common than rank 101
    starts = [(video, start, end) for video, start, end, _ in spans]
    assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(starts, starts[1:], strict=False))  # cues in order


def test_fts5_and_tantivy_find_exactly_the_spans_with_a_word(bench, tmp_path: Path) -> None:  # noqa: ANN001
    vocab = bench.vocabulary(5_000, seed=0)
    spans = bench.generate_spans(2_000, 40, vocab, seed=0)
    meta = bench.build_fts(tmp_path / "metadata.sqlite", spans)
    try:
        texts = dict(meta.db.execute("SELECT id, text FROM text_spans"))
        assert len(texts) == 2_000
        word = vocab[300]
        holding = {i for i, text in texts.items() if word in re.findall(r"\w+", text.lower())}
        assert 0 < len(holding) < bench.LIMIT
        assert set(bench.fts_ids(meta, bench.fts_query(word))) == holding
        pytest.importorskip("tantivy")
        index, schema = bench.build_tantivy(tmp_path / "tantivy", meta, threads=1)
        assert set(bench.tantivy_search(index, schema, [word])) == holding
        capital = next(t for t in texts.values() if not t[0].islower()).split()[0]  # "Chou" finds "chou"
        assert bench.tantivy_search(index, schema, [capital.lower().strip(".?!,")])
    finally:
        meta.close()


@pytest.mark.slow
def test_the_script_prints_its_table_at_tiny_n(bench, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert bench.main(["--n", "2000", "--queries", "30", "--out", str(tmp_path / "scale"), "--no-doc"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines() if line.startswith("| ")}
    engines = {"fts5 search_spans", "fts5 ids"}
    try:
        import tantivy  # noqa: F401

        engines.add("tantivy ids")
    except ImportError:
        assert "not measured: the tantivy package is not installed" in out
    assert engines <= set(rows)
    for engine in engines:
        build_s, index_mb, p50, p99 = (float(v.replace(",", "")) for v in rows[engine][:4])
        assert build_s > 0 and index_mb > 0 and 0 < p50 <= p99
    assert "2,000 spans" in out and "30 queries" in out
