"""Search by what a video shows, says, or both: visual ranking, lexical (FTS5) ranking of text spans, and their fusion.

Two fusions, named on the command line: a weighted sum of each list's scores as fractions of its best (`text_weight`
for text, 1 - text_weight for visual; the default) and reciprocal rank fusion (each list adds 1 / (k + rank), k =
60, the constant of Cormack et al. 2009; needs no score calibration). Weighted is the default because rank fusion
throws away what the lexical list knows best: a span with every query word outscores one with a single word by far,
yet RRF gives ranks 1 and 2 nearly the same share (1/61 vs 1/62), so a video first by text loses to one second by
text and first by an unrelated visual ranking (measured on the lab's spoken queries in docs/results.md, "Search what
is said and shown"). Scores are divided by the list's best, not min-max stretched: a visual ranking's similarities
lie close together, and stretching them to [0, 1] would give its first video the full visual weight and its last
none, so a video first by text and last by sight would only tie one first by sight alone. Where no span matches, the
text list is empty and both fusions keep the visual order; function words never count as a match (`fts_query`). A
fused hit's moment is its best text span when text matched (the moment is where the evidence is), else its best
visual segment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from vitr.errors import ConfigError
from vitr.index.metadata import HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN
from vitr.index.refine import Refinement, refine_hits
from vitr.index.video_index import Accept, Evidence, Hit, VideoIndex

MODES = ("visual", "text", "hybrid")
FUSIONS = ("rrf", "weighted")
DEFAULT_FUSION = "weighted"
MIN_COVERAGE = 0.5  # weighted fusion: text evidence counts once it holds half of the query's content words
RRF_K = 60
EVIDENCE_PER_HIT = 3  # text spans shown per hit, best first
_CANDIDATES = 100  # each list offers at least this many videos to the fusion
# English function words: a query's words that say nothing of what a span is about (the usual short list of
# lexical search engines, e.g. Lucene's English stop set, with the pronouns and auxiliaries added)
STOPWORDS = frozenset(
    "a an and are as at be been but by did do does for from had has have he her his i if in into is it its me my no "
    "not of on or our she so such than that the their them then there these they this those to us was we were what "
    "when where which who whom why will with you your".split()
)


def default_mode(index: VideoIndex) -> str:
    """hybrid where the index holds text spans, else visual."""
    return "hybrid" if index.meta.text_span_count() else "visual"


def fts_query(text: str) -> str | None:
    """A user's words as an FTS5 query (any word matches, BM25 ranks spans with more and rarer words first); FTS5
    syntax in the query is taken literally, so no query can be an error. None when it has no words.

    Function words (`STOPWORDS`) are left out unless the query has nothing else ("the who"): with any-word
    matching, "a dog on the beach" would otherwise match every span that says "the", and fusion would take that
    for text evidence."""
    return " OR ".join(f'"{w}"' for w in query_words(text)) or None


def query_words(text: str) -> list[str]:
    """The words of a query that text evidence is matched on: its content words (all of them for "the who")."""
    words = list(dict.fromkeys(re.findall(r"\w+", text.lower())))
    return [w for w in words if w not in STOPWORDS] or words


def search(
    index: VideoIndex,
    text: str,
    k: int = 10,
    mode: str | None = None,
    fusion: str = DEFAULT_FUSION,
    text_weight: float = 0.5,
    offset: int = 0,
    accept: Accept | None = None,
    min_score: float | None = None,
    refine: Refinement | None = None,
) -> list[Hit]:
    """Hits `offset .. offset + k` for a text query in `mode` (None: `default_mode`). `accept` filters the videos
    each ranking offers; `min_score` keeps the hits whose returned score (visual similarity, BM25 or fused score,
    as the mode gives) is at least this, applied before paging so pages stay consistent. `refine` sharpens the
    visual moments of the returned hits (vitr.index.refine; costs a decode and encode per hit)."""
    mode = mode or default_mode(index)
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    if not 0.0 <= text_weight <= 1.0:
        raise ConfigError(f"the text weight must lie between 0 and 1, got {text_weight}")
    wanted = offset + k
    if mode != "hybrid" and min_score is not None:  # a ranking's own score is the returned one: filter as it goes
        accept = _with_min_score(accept, min_score)
    if mode == "text":
        return search_spans(index, text, max(wanted, _CANDIDATES), accept)[offset:wanted]
    query = index.text_vector(text)  # remembered: the timelines and later pages ask again
    if mode == "visual":
        hits = index.search_vectors(query, k, offset, accept)[0]
    else:
        with index.meta.snapshot():  # text and visual lists of the same committed state
            text_hits = search_spans(index, text, max(wanted, _CANDIDATES), accept)
            visual = index.search_vectors(query, max(wanted, _CANDIDATES), 0, accept)[0]
            visual = _with_visual_scores(index, np.ravel(query), visual, text_hits)
        visual_hits = [replace(h, evidence=(Evidence("visual", h.start, h.end, h.score),)) for h in visual]
        fused = (fuse_rrf(visual_hits, text_hits) if fusion == "rrf"
                 else fuse_weighted(visual_hits, text_hits, text_weight, query_words(text)))
        if min_score is not None:
            fused = [h for h in fused if h.score >= min_score]
        hits = fused[offset:wanted]
    return hits if refine is None else refine_hits(index, hits, query, refine)


def _with_visual_scores(index: VideoIndex, query: np.ndarray, visual: list[Hit], text: list[Hit]) -> list[Hit]:
    """The visual candidates plus every text-matched video they miss, scored by its best stored segment.

    The visual list holds only the top candidates; a video found by its words but outside them would otherwise
    score 0 for sight, as if it looked like nothing the query says, and lose to any candidate that shares a word."""
    have = {h.video_id for h in visual}
    extra = []
    for hit in text:
        if hit.video_id in have:
            continue
        segments = index.meta.video_segments(hit.video_id)
        if not segments:
            continue
        scores = [float(np.dot(s.vector, query)) for s in segments]
        best = segments[int(np.argmax(scores))]
        extra.append(Hit(hit.path, max(scores), hit.video_id, best.start, best.end))
    return sorted(visual + extra, key=lambda h: -h.score) if extra else visual


def _with_min_score(accept: Accept | None, min_score: float) -> Accept:
    if accept is None:
        return lambda hit: hit.score >= min_score
    return lambda hit: hit.score >= min_score and accept(hit)


def search_spans(index: VideoIndex, text: str, k: int, accept: Accept | None = None) -> list[Hit]:
    """Videos ranked by their best matching text span (score: -BM25, higher is better), with their spans as
    evidence; the hit's moment is the best span."""
    query = fts_query(text)
    if query is None:
        return []
    limit = max(k * 20, 200)  # spans, several per video
    while True:
        with index.meta.snapshot():
            matches = index.meta.search_spans(query, limit)
            records = index.meta.videos_by_id(m[1] for m in matches)
        per_video: dict[int, list[Evidence]] = {}
        for _sid, video_id, source, language, start, end, bm25, marked in matches:
            if video_id not in records:
                continue
            found = per_video.setdefault(video_id, [])
            if len(found) < EVIDENCE_PER_HIT:
                snippet, highlights = _unmark(marked)
                found.append(Evidence(source, start, end, -bm25, snippet, highlights, language))
        hits = []
        for video_id, evidence in per_video.items():
            best = evidence[0]
            sources = tuple(dict.fromkeys(e.source for e in evidence))
            hit = Hit(records[video_id].path, best.score, video_id, best.start, best.end, sources, tuple(evidence))
            if accept is None or accept(hit):
                hits.append(hit)
        if len(hits) >= k or len(matches) < limit:
            return hits[:k]
        limit *= 4


def fuse_rrf(visual: list[Hit], text: list[Hit], k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over the lists a video is in of 1 / (k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for hits in (visual, text):
        for rank, hit in enumerate(hits, 1):
            scores[hit.video_id] = scores.get(hit.video_id, 0.0) + 1.0 / (k + rank)
    return _combine(visual, text, scores)


def fuse_weighted(visual: list[Hit], text: list[Hit], text_weight: float, words: Sequence[str] | None = None,
                  min_coverage: float = MIN_COVERAGE) -> list[Hit]:
    """text_weight * (text score / best text score) * coverage + (1 - text_weight) * (visual / best visual), the
    visual cosine similarity first mapped from [-1, 1] to [0, 1] and BM25 (negated, so positive) taken as it is; a
    video missing from a list scores 0 there.

    coverage (with the query's `words`): the share of them the hit's text evidence holds, and 0 below
    `min_coverage`. BM25 over the best span ranks a one-word match first when nothing matches better, so without it
    a caption-like query ("a red circle moving left") that shares one word with a misheard transcript would get the
    whole text weight; text evidence has to explain at least part of the query to count."""
    scores: dict[int, float] = {}
    text_values = [h.score * (_coverage(h, words, min_coverage) if words else 1.0) for h in text]
    lists = ((visual, 1.0 - text_weight, [(1.0 + h.score) / 2.0 for h in visual]),
             (text, text_weight, text_values))
    for hits, weight, values in lists:
        for hit, fraction in zip(hits, _of_best(values), strict=True):
            scores[hit.video_id] = scores.get(hit.video_id, 0.0) + weight * fraction
    return _combine(visual, text, scores)


def _coverage(hit: Hit, words: Sequence[str], min_coverage: float) -> float:
    """Share of `words` highlighted in the hit's evidence (0 below min_coverage)."""
    found = {e.snippet[a:b].lower() for e in hit.evidence if e.snippet for a, b in e.highlights}
    share = sum(w in found for w in words) / len(words)
    return share if share >= min_coverage else 0.0


def _combine(visual: list[Hit], text: list[Hit], scores: dict[int, float]) -> list[Hit]:
    by_visual = {h.video_id: h for h in visual}
    by_text = {h.video_id: h for h in text}
    fused = []
    for video_id, score in scores.items():
        t, v = by_text.get(video_id), by_visual.get(video_id)
        moment = t or v
        assert moment is not None
        sources = tuple(dict.fromkeys((*(v.sources if v else ()), *(t.sources if t else ()))))
        evidence = (*(t.evidence if t else ()), *(v.evidence if v else ()))
        fused.append(Hit(moment.path, score, video_id, moment.start, moment.end, sources, evidence))
    fused.sort(key=lambda h: (-h.score, h.path))
    return fused


def _of_best(scores: list[float]) -> list[float]:
    """Non-negative scores as fractions of the best (all 0 when the best is 0)."""
    best = max(scores, default=0.0)
    return [max(s, 0.0) / best if best > 0 else 0.0 for s in scores]


def _unmark(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Text with highlight markers -> (plain text, [start, end) ranges of the highlighted words)."""
    plain: list[str] = []
    ranges = []
    length = 0
    opened = None
    for part in re.split(f"([{HIGHLIGHT_OPEN}{HIGHLIGHT_CLOSE}])", marked):
        if part == HIGHLIGHT_OPEN:
            opened = length
        elif part == HIGHLIGHT_CLOSE:
            if opened is not None:
                ranges.append((opened, length))
            opened = None
        else:
            plain.append(part)
            length += len(part)
    return "".join(plain), tuple(ranges)
