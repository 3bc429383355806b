"""The lexical index of text spans at scale: SQLite FTS5 in vitr's metadata against tantivy.

Generates N subtitle-like spans (5-15 words each, drawn from a Zipf vocabulary whose most frequent words are the
English function words vitr's `fts_query` leaves out), seeded, for about 20k videos, and loads them
(a) into an index's metadata through `Metadata.commit_batch`, which fills the FTS5 table by its triggers, as
`vitr index` does, and (b) into a tantivy index (the same spans, read back from that metadata, with their span ids).
Then times single queries of 1-3 words (words from the frequent, middle and rare parts of the vocabulary; any
word matches, top 100 by BM25), each query run on every index in turn so they share the machine's load.
Writes the `text-scale` section of docs/performance.md.

    python benchmarks/text_index_scale.py              # 1M spans
    python benchmarks/text_index_scale.py --n 100000   # quicker
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from common import machine_line, markdown_table, write_doc_section

from vitr.index.hybrid import STOPWORDS, fts_query
from vitr.index.metadata import Metadata
from vitr.index.text_tracks import TextSpan, TextTrack

LIMIT = 100  # spans a text ranking offers the fusion
ZIPF_S = 1.05
BATCH_VIDEOS = 500  # videos per committed batch, about what an indexing run commits at once
# query word bands by vocabulary rank: (name, first rank, last rank)
BANDS = (("frequent", len(STOPWORDS), 1_000), ("middle", 1_000, 10_000), ("rare", 10_000, None))
_ONSETS = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl sh st th tr".split()
_VOWELS = "a e i o u ai ea ee oo ou".split()
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]


def vocabulary(size: int, seed: int) -> np.ndarray:
    """`size` distinct words, most frequent first: vitr's stop words, then made-up words of 1-3 syllables."""
    rng = np.random.default_rng(seed)
    words = dict.fromkeys(sorted(STOPWORDS))
    while len(words) < size:
        syllables = rng.integers(1, 4)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
        words.setdefault(word)
    return np.array(list(words), dtype=object)


def generate_spans(n: int, videos: int, vocab: np.ndarray, seed: int) -> list[tuple[int, float, float, str]]:
    """n spans (video index, start s, end s, text), each video's spans consecutive in time like subtitle cues."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** ZIPF_S
    cdf = np.cumsum(weights / weights.sum())
    lengths = rng.integers(5, 16, n)
    word_ids = np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), len(vocab) - 1)
    words = vocab[word_ids]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    video_of = np.sort(rng.integers(0, videos, n))
    durations = rng.uniform(1.0, 5.0, n)
    ends = rng.choice([".", ".", ".", "?", "!", ","], n)
    spans, clock, previous = [], 0.0, -1
    for i in range(n):
        if video_of[i] != previous:
            clock, previous = 0.0, video_of[i]
        text = " ".join(words[bounds[i] : bounds[i + 1]])
        spans.append((int(video_of[i]), clock, clock + durations[i], text[0].upper() + text[1:] + ends[i]))
        clock += durations[i] + 0.2
    return spans


def make_queries(count: int, vocab: np.ndarray, seed: int) -> list[tuple[str, str]]:
    """(query text, kind) for `count` queries of 1-3 distinct words; kind names the most frequent band used."""
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(count):
        bands = sorted(rng.integers(0, len(BANDS), rng.integers(1, 4)))
        words = []
        for b in bands:
            _, lo, hi = BANDS[b]
            word = vocab[rng.integers(lo, hi or len(vocab))]
            if word not in words:
                words.append(word)
        queries.append((" ".join(words), BANDS[bands[0]][0]))
    return queries


def build_fts(path: Path, spans: Sequence[tuple[int, float, float, str]], fts: bool = True) -> Metadata:
    """The spans committed into a fresh index metadata the way `vitr index` commits text tracks; `fts=False`
    drops the triggers that fill the FTS5 table first, which leaves the cost of the spans table alone."""
    meta = Metadata(path)
    if not fts:
        meta.db.executescript("DROP TRIGGER text_spans_indexed; DROP TRIGGER text_spans_unindexed;")
    by_video: dict[int, list[TextSpan]] = {}
    for video, start, end, text in spans:
        by_video.setdefault(video, []).append(TextSpan(start, end, text, "subtitles", "en"))
    videos = sorted(by_video)
    for first in range(0, len(videos), BATCH_VIDEOS):
        batch = videos[first : first + BATCH_VIDEOS]
        paths = {v: f"/videos/v{v:05d}.mp4" for v in batch}
        meta.commit_batch(
            [(paths[v], 1_000_000, 0, f"{v:040x}", by_video[v][-1].end, []) for v in batch],
            texts={paths[v]: TextTrack(by_video[v]) for v in batch},
        )
    meta.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return meta


def fts_bytes(meta: Metadata) -> tuple[int, int]:
    """(bytes of the FTS5 index's tables, bytes of the spans table with its index) in the metadata file."""
    rows = meta.db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    fts = sum(size for name, size in rows if name.startswith("text_fts"))
    spans = sum(size for name, size in rows if name in ("text_spans", "text_spans_video"))
    return fts, spans


def build_tantivy(directory: Path, meta: Metadata, threads: int):  # noqa: ANN201 (tantivy is optional)
    """A tantivy index of the metadata's spans: the text indexed (Unicode words, lower case, accents folded, as
    vitr's FTS5 table) and the span id stored, which is what a search needs to find the span in the metadata."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=False, tokenizer_name="folded")
    builder.add_integer_field("span", stored=True, indexed=False, fast=True)
    schema = builder.build()
    directory.mkdir(parents=True)
    index = tantivy.Index(schema, path=str(directory))
    analyzer = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    index.register_tokenizer(
        "folded", analyzer.filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build()
    )
    writer = index.writer(heap_size=256_000_000, num_threads=threads)
    for span_id, text in meta.db.execute("SELECT id, text FROM text_spans ORDER BY id"):
        writer.add_document(tantivy.Document(text=text, span=span_id))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, schema


def tantivy_search(index, schema, words: Sequence[str]) -> list[int]:  # noqa: ANN001
    """Span ids of the best `LIMIT` spans matching any of `words`, best (highest BM25) first."""
    import tantivy

    query = tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", w)) for w in words]
    )
    searcher = index.searcher()
    hits = searcher.search(query, LIMIT, count=False).hits
    return [searcher.doc(address)["span"][0] for _, address in hits]


def span_rows(meta: Metadata, ids: Sequence[int]) -> list[tuple]:
    """The rows a hit needs (video, source, language, times, text) of tantivy's spans, in its order."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, video_id, source, language, start, end, text FROM text_spans WHERE id IN ({marks})"
    rows = {r[0]: r for r in meta.db.execute(sql, list(ids))}
    return [rows[i] for i in ids]


def fts_ids(meta: Metadata, match: str) -> list[int]:
    """Span ids only, best first: FTS5's share of `search_spans` without the join and highlighting."""
    sql = "SELECT rowid FROM text_fts WHERE text_fts MATCH ? ORDER BY bm25(text_fts) LIMIT ?"
    return [r[0] for r in meta.db.execute(sql, (match, LIMIT))]


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load_line() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="spans")
    parser.add_argument("--videos", type=int, default=None, help="default: one per 50 spans (20k at 1M)")
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tantivy-threads", type=int, default=1, help="indexing threads (FTS5 indexes on one)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vitr-text-scale"), help="scratch folder, replaced")
    parser.add_argument("--no-tantivy", action="store_true", help="measure FTS5 alone")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)

    machine, load_start = machine_line(), load_line()
    videos = args.videos or max(1, args.n // 50)
    vocab = vocabulary(args.vocab, args.seed)
    start = time.perf_counter()
    spans = generate_spans(args.n, videos, vocab, args.seed)
    words = sum(len(s[3].split()) for s in spans)
    print(f"{len(spans):,} spans, {words:,} words, {videos:,} videos generated in {time.perf_counter() - start:.1f} s")
    queries = make_queries(args.queries, vocab, args.seed + 1)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)

    start = time.perf_counter()
    meta = build_fts(args.out / "metadata.sqlite", spans)
    fts_build = time.perf_counter() - start
    fts_size, spans_size = fts_bytes(meta)
    file_size = (args.out / "metadata.sqlite").stat().st_size
    print(f"FTS5: built in {fts_build:.1f} s; FTS tables {fts_size / 2**20:.0f} MB, spans {spans_size / 2**20:.0f} MB")
    start = time.perf_counter()
    build_fts(args.out / "spans-only.sqlite", spans, fts=False).close()
    spans_build = time.perf_counter() - start
    (args.out / "spans-only.sqlite").unlink()
    print(f"the spans table alone: built in {spans_build:.1f} s")
    del spans

    tantivy_index = None
    tantivy_note = "not measured (--no-tantivy)"
    if not args.no_tantivy:
        if importlib.util.find_spec("tantivy") is None:
            tantivy_note = "tantivy not measured: the tantivy package is not installed (pip install -e '.[bench]')"
        else:
            start = time.perf_counter()
            tantivy_index, schema = build_tantivy(args.out / "tantivy", meta, args.tantivy_threads)
            tantivy_build = time.perf_counter() - start
            tantivy_size = directory_bytes(args.out / "tantivy")
            tantivy_note = f"tantivy {importlib.metadata.version('tantivy')}"
            print(f"tantivy: built in {tantivy_build:.1f} s; {tantivy_size / 2**20:.0f} MB")

    engines = ["fts5 search_spans", "fts5 ids"]
    engines += ["tantivy ids + span rows", "tantivy ids"] if tantivy_index is not None else []
    latencies = {e: [] for e in engines}
    found: dict[str, list[list[int]]] = {e: [] for e in engines}
    for phase in ("warm-up", "measure"):
        for text, _ in queries[:20] if phase == "warm-up" else queries:
            match, words_ = fts_query(text), text.split()
            for engine in engines:
                t0 = time.perf_counter()
                if engine == "fts5 search_spans":
                    ids = [m[0] for m in meta.search_spans(match, LIMIT)]
                elif engine == "fts5 ids":
                    ids = fts_ids(meta, match)
                elif engine == "tantivy ids + span rows":
                    ids = [r[0] for r in span_rows(meta, tantivy_search(tantivy_index, schema, words_))]
                else:
                    ids = tantivy_search(tantivy_index, schema, words_)
                elapsed = (time.perf_counter() - t0) * 1000
                if phase == "measure":
                    latencies[engine].append(elapsed)
                    found[engine].append(ids)
    load_end = load_line()

    kinds = np.array([kind for _, kind in queries])
    matched = [len(ids) for ids in found["fts5 ids"]]
    rows = []
    for engine in engines:
        lat = np.array(latencies[engine])
        p50, p99 = np.percentile(lat, [50, 99])
        by_kind = [float(np.percentile(lat[kinds == band], 50)) if (kinds == band).any() else "-" for band, *_ in BANDS]
        build, size = (fts_build, fts_size) if engine.startswith("fts5") else (tantivy_build, tantivy_size)
        rows.append([engine, build, size / 2**20, p50, p99, float(lat.max()), *by_kind])
    header = [
        "index, what a query returns",
        "build s",
        "index MB",
        "p50 ms",
        "p99 ms",
        "max ms",
        *[f"p50 ms, {band} word" for band, *_ in BANDS],
    ]
    table = markdown_table(header, rows)
    agreement = ""
    if tantivy_index is not None:
        overlap = [
            len(set(a[:10]) & set(b[:10])) / min(10, len(a))
            for a, b in zip(found["fts5 ids"], found["tantivy ids"], strict=True)
            if a
        ]
        agreement = (
            f" The two rankings share {np.mean(overlap) * 100:.0f} % of their top 10 on average (both BM25 "
            "with k1 1.2, b 0.75)."
        )
    summary = (
        f"Measured by `python benchmarks/text_index_scale.py --n {args.n}` on {machine}; uptime load average "
        f"{load_start.strip()} at the start, {load_end.strip()} at the end. {args.n:,} spans ({words:,} words, Zipf "
        f"s={ZIPF_S} over {args.vocab:,} words whose most frequent are the stop words `fts_query` drops) in {videos:,} "
        f"videos; {tantivy_note}, {args.tantivy_threads} indexing thread(s). {len(queries)} queries of 1-3 words, any "
        f"word matching, top {LIMIT} by BM25, each run on every index in turn, one at a time; a query's band is its "
        f"most frequent word's (frequent: ranks {BANDS[0][1]}-{BANDS[0][2]}, middle: to {BANDS[1][2]}, rare: the "
        f"rest), {int((kinds == 'frequent').sum())}/{int((kinds == 'middle').sum())}/{int((kinds == 'rare').sum())} "
        f"queries; median {int(np.median(matched))} spans returned. `fts5 search_spans` is vitr's query (spans joined "
        "for their video and times, matched words highlighted); the `ids` rows return span ids only, and "
        "`tantivy ids + span rows` reads those spans' rows from the metadata after (no highlighting). Build s: "
        f"loading the spans into the metadata with FTS5, of which {spans_build:.3g} s is the spans table alone "
        "(FTS5 triggers dropped); for tantivy, indexing those spans read back from the metadata."
        f"{agreement} Index MB: the FTS5 tables in the metadata file, the tantivy folder; both need the spans table "
        f"beside them ({spans_size / 2**20:,.0f} MB; the whole metadata file {file_size / 2**20:,.0f} MB)."
    )
    print(table)
    print(summary)
    if not args.no_doc:
        write_doc_section("text-scale", f"{summary}\n\n{table}")
    meta.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
