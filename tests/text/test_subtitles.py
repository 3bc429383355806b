"""Subtitle sidecars: which files belong to a video, and how .srt / .vtt become timestamped spans or a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitr.index.hybrid import _unmark, fts_query, fuse_rrf, fuse_weighted, query_words
from vitr.index.text_tracks import (
    SubtitleError,
    TextSpan,
    find_sidecars,
    language_of,
    parse_sources,
    parse_subtitles,
    read_track,
)
from vitr.index.video_index import Evidence, Hit

SRT = (
    "1\n00:00:01,500 --> 00:00:03,000\n<i>The lighthouse</i>\nkeeper sings\n\n"
    "2\n00:00:04,000 --> 00:00:05,250\nat dawn\n"
)
VTT = (
    "WEBVTT\n\n00:00:02.000 --> 00:00:04.500\nle phare {\\an8}chante\n\n"
    "00:01:00.000 --> 00:01:01.000\n<c.yellow>fin</c>\n"
)


def test_srt_cues_become_spans_with_tags_stripped_and_lines_joined(tmp_path: Path) -> None:
    path = tmp_path / "a.srt"
    path.write_text(SRT, encoding="utf-8")
    assert parse_subtitles(path, "en") == [
        TextSpan(1.5, 3.0, "The lighthouse keeper sings", "subtitles", "en"),
        TextSpan(4.0, 5.25, "at dawn", "subtitles", "en"),
    ]


def test_vtt_cues_become_spans(tmp_path: Path) -> None:
    path = tmp_path / "a.vtt"
    path.write_bytes(b"\xef\xbb\xbf" + VTT.encode())  # a BOM is allowed
    assert [(s.start, s.end, s.text) for s in parse_subtitles(path)] == [(2.0, 4.5, "le phare chante"),
                                                                         (60.0, 61.0, "fin")]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("latin1.srt", SRT.replace("keeper", "gardien é").encode("latin-1"), "not UTF-8 text"),
        ("junk.srt", b"this is not a subtitle file\nat all\n", "malformed SRT|no subtitle cues"),
        ("junk.vtt", b"no header here\n00:00 --> nonsense\n", "malformed WebVTT"),
        ("empty-cues.vtt", b"WEBVTT\n\nnothing timed here\n", "no subtitle cues|malformed WebVTT"),
    ],
)
def test_broken_subtitle_files_give_one_clear_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SubtitleError, match=reason) as info:
        parse_subtitles(path)
    assert "\n" not in str(info.value)


def test_sidecars_are_matched_by_stem_and_language_suffix(tmp_path: Path) -> None:
    video = tmp_path / "movie.mp4"
    video.write_bytes(b"")
    for name in ["movie.srt", "movie.en.srt", "movie.pt-BR.vtt", "movie.director's cut.srt", "movies.srt",
                 "other.srt", "movie.txt"]:
        (tmp_path / name).write_text(SRT)
    found = find_sidecars(video)
    assert sorted(Path(p).name for p in found) == ["movie.en.srt", "movie.pt-BR.vtt", "movie.srt"]
    assert language_of(video, tmp_path / "movie.en.srt") == "en" and language_of(video, tmp_path / "movie.srt") is None


def test_sidecar_links_out_of_the_folder_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    root.mkdir()
    (tmp_path / "secret.srt").write_text(SRT)
    (root / "movie.en.srt").symlink_to(tmp_path / "secret.srt")
    assert find_sidecars(root / "movie.mp4", root) == {}


def test_a_broken_sidecar_does_not_hide_the_good_one(tmp_path: Path) -> None:
    video = tmp_path / "movie.mp4"
    (tmp_path / "movie.en.srt").write_text(SRT)
    (tmp_path / "movie.fr.srt").write_bytes(b"\xff\xfe garbage")
    track = read_track(video, find_sidecars(video))
    assert [s.language for s in track.spans] == ["en", "en"]
    assert list(track.failures) == [str(tmp_path / "movie.fr.srt")]


def test_text_sources_are_checked() -> None:
    assert parse_sources("subtitles") == ("subtitles",) and parse_sources("none") == ()
    assert parse_sources(" OCR, subtitles,asr,ocr") == ("ocr", "subtitles", "asr")
    with pytest.raises(ValueError, match="unknown text source 'braille'"):
        parse_sources("subtitles,braille")


def test_queries_cannot_break_fts_syntax_and_highlights_become_ranges() -> None:
    assert fts_query('keeper "NEAR( OR * -x') == '"keeper" OR "near" OR "x"'
    assert fts_query("!!! ...") is None


def test_function_words_are_not_text_evidence_unless_the_query_is_nothing_else() -> None:
    assert fts_query("a lighthouse on the hill") == '"lighthouse" OR "hill"'
    assert fts_query("The Who") == '"the" OR "who"'  # only function words: search them rather than nothing
    assert _unmark("the \x02lighthouse\x03 keeper \x02sings\x03") == ("the lighthouse keeper sings",
                                                                     ((4, 14), (22, 27)))


def test_rrf_and_weighted_fusion() -> None:
    visual = [Hit("a", 0.9, 1), Hit("b", 0.5, 2), Hit("c", 0.1, 3)]
    text = [Hit("b", 7.0, 2, 4.0, 5.0, ("subtitles",)), Hit("c", 1.0, 3, 1.0, 2.0, ("subtitles",))]
    rrf = fuse_rrf(visual, text)
    assert [h.path for h in rrf] == ["b", "c", "a"]  # in both lists beats first in one
    assert rrf[0].score == pytest.approx(1 / 62 + 1 / 61) and rrf[0].sources == ("visual", "subtitles")
    assert (rrf[0].start, rrf[0].end) == (4.0, 5.0)  # the moment is the text span's
    assert [h.path for h in fuse_weighted(visual, text, 0.9)][0] == "b"
    assert [h.path for h in fuse_weighted(visual, text, 0.0)] == ["a", "b", "c"]


def test_weighted_fusion_counts_text_evidence_by_how_much_of_the_query_it_holds() -> None:
    def said(path: str, video_id: int, snippet: str, word: str) -> Hit:
        at = snippet.index(word)
        evidence = (Evidence("asr", 1.0, 2.0, 3.0, snippet, ((at, at + len(word)),)),)
        return Hit(path, 3.0, video_id, 1.0, 2.0, ("asr",), evidence)

    visual = [Hit("a", 0.30, 1), Hit("b", 0.29, 2)]
    # a caption-like query shares one word with a misheard transcript of b: the visual order stands
    caption = query_words("a small red circle moving left")
    text = [said("b", 2, "the left bank", "left")]
    assert [h.path for h in fuse_weighted(visual, text, 0.5, caption)] == ["a", "b"]
    assert [h.path for h in fuse_weighted(visual, text, 0.5)] == ["b", "a"]  # counted whole, it would win
    # a query the transcript holds in full wins on its words
    spoken = query_words("left")
    assert [h.path for h in fuse_weighted(visual, text, 0.5, spoken)] == ["b", "a"]


def test_cli_choices_equal_their_sources() -> None:
    from vitr.cli import choices
    from vitr.index.hybrid import DEFAULT_FUSION, FUSIONS, MODES

    assert choices.SEARCH_MODES == MODES and choices.FUSIONS == FUSIONS and choices.DEFAULT_FUSION == DEFAULT_FUSION
