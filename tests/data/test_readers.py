import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from vitr.data import load_dataset
from vitr.data.readers import load_caption_pickle
from vitr.errors import ConfigError, DatasetFormatError

FIXTURES = Path(__file__).parent / "fixtures"


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\0")


# --- MSR-VTT -----------------------------------------------------------------------------------------------------


def test_msrvtt_1ka_test_is_one_caption_per_row():
    dataset = load_dataset("msrvtt", FIXTURES / "msrvtt", "test", video_dir="/videos")
    assert [v.video_id for v in dataset.videos] == ["video7010", "video7011"]
    assert [c.text for c in dataset.captions] == ["a cartoon dog runs", "people dance, on a stage"]
    assert dataset.videos[0].path == "/videos/video7010.mp4"
    assert not dataset.is_multi_caption and not dataset.paragraph


def test_msrvtt_train9k_expands_every_caption_of_every_video():
    dataset = load_dataset("msrvtt", FIXTURES / "msrvtt", "train9k")
    assert [v.video_id for v in dataset.videos] == ["video0", "video1", "video2"]
    assert [c.video_id for c in dataset.captions] == ["video0", "video0", "video1", "video2", "video2", "video2"]
    assert dataset.captions[1].text == "a red car drives down the road"
    assert dataset.caption_video_index().tolist() == [0, 0, 1, 2, 2, 2]
    assert len(load_dataset("msrvtt", FIXTURES / "msrvtt", "train7k").videos) == 2


def test_msrvtt_full_test_is_multi_caption():
    dataset = load_dataset("msrvtt", FIXTURES / "msrvtt", "full_test")
    assert dataset.is_multi_caption
    texts = [c.text for c in dataset.captions]
    assert texts == ["a cartoon dog runs", "an animated dog plays", "people dance on a stage"]


def test_msrvtt_prefers_mp4_and_falls_back_to_webm(tmp_path):
    _touch(tmp_path, "all/video7010.webm", "all/video7011.mp4", "all/video7011.webm")
    dataset = load_dataset("msrvtt", FIXTURES / "msrvtt", "test", video_dir=tmp_path, check_files=True)
    assert [Path(v.path).name for v in dataset.videos] == ["video7010.webm", "video7011.mp4"]


def test_msrvtt_missing_split_file_names_the_file(tmp_path):
    shutil.copy(FIXTURES / "msrvtt" / "MSRVTT_data.json", tmp_path)
    with pytest.raises(DatasetFormatError, match=r"MSRVTT_val\.full\.csv"):
        load_dataset("msrvtt", tmp_path, "full_val")
    with pytest.raises(DatasetFormatError, match="no split"):
        load_dataset("msrvtt", tmp_path, "val")


def test_msrvtt_malformed_json_names_the_file_and_the_problem(tmp_path):
    shutil.copy(FIXTURES / "msrvtt" / "MSRVTT_train.9k.csv", tmp_path)
    (tmp_path / "MSRVTT_data.json").write_text('{"sentences": [{"video_id": "video0"}]}')
    with pytest.raises(DatasetFormatError, match=r"MSRVTT_data\.json.*sentences\[0\].*'caption'"):
        load_dataset("msrvtt", tmp_path, "train9k")
    (tmp_path / "MSRVTT_data.json").write_text('{"sentences": [')
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        load_dataset("msrvtt", tmp_path, "train9k")


# --- check_files ---------------------------------------------------------------------------------------------------


def test_check_files_reports_missing_videos_by_count(tmp_path):
    _touch(tmp_path, "video0.mp4")
    with pytest.raises(DatasetFormatError, match="2 of 3 video files are missing"):
        load_dataset("msrvtt", FIXTURES / "msrvtt", "train9k", video_dir=tmp_path, check_files=True)
    # without the check the annotations load on a machine without videos
    assert len(load_dataset("msrvtt", FIXTURES / "msrvtt", "train9k", video_dir=tmp_path).videos) == 3


# --- MSVD ----------------------------------------------------------------------------------------------------------


def test_msvd_joins_token_lists_and_follows_the_split_list(tmp_path):
    _touch(tmp_path, "-8y1Q0rA3n8_108_115.avi", "-4wsuPCjDBc_5_15.avi")
    dataset = load_dataset("msvd", FIXTURES / "msvd", "test", video_dir=tmp_path, check_files=True)
    assert [v.video_id for v in dataset.videos] == ["-8y1Q0rA3n8_108_115", "-4wsuPCjDBc_5_15"]
    assert dataset.captions[0].text == "a woman slices an onion"
    assert len(dataset.captions) == 5 and dataset.is_multi_caption
    assert dataset.videos[1].path == str(tmp_path / "-4wsuPCjDBc_5_15.avi")


class _RunsCode:
    def __reduce__(self):
        return (os.mkdir, ("PWNED",))


def test_msvd_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(pickle.dumps({"vid": [["a", "b"]], "evil": _RunsCode()}))
    with pytest.raises(DatasetFormatError, match=r"raw-captions\.pkl.*os\.mkdir|posix\.mkdir"):
        load_caption_pickle(path)
    assert not (tmp_path / "PWNED").exists()


def test_msvd_pickle_of_wrong_shape_is_an_error(tmp_path):
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(pickle.dumps({"vid": [[1, 2]]}))
    with pytest.raises(DatasetFormatError, match="token list"):
        load_caption_pickle(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(DatasetFormatError, match="raw-captions.pkl"):
        load_caption_pickle(path)


# --- DiDeMo --------------------------------------------------------------------------------------------------------


def test_didemo_builds_paragraphs_over_the_first_31_seconds(tmp_path):
    dataset = load_dataset("didemo", FIXTURES / "didemo", "test", video_dir=tmp_path)
    # the list file selects and orders the videos; the third video of the JSON is not listed
    assert [v.video_id for v in dataset.videos] == [
        "12090392@N02_13482799053_87ef417396.mp4",
        "10015567@N08_3655084291_d8b58466fa.mov",
    ]
    assert dataset.captions[1].text == "a dog runs into view the dog sits down"
    assert all((v.start, v.end) == (0.0, 31.0) for v in dataset.videos)
    assert dataset.paragraph and not dataset.is_multi_caption
    assert dataset.videos[1].path == str(tmp_path / "10015567@N08_3655084291_d8b58466fa.mov")


def test_didemo_without_list_file_keeps_json_order(tmp_path):
    shutil.copy(FIXTURES / "didemo" / "test_data.json", tmp_path)
    dataset = load_dataset("didemo", tmp_path, "test")
    assert len(dataset.videos) == 3
    assert dataset.videos[0].video_id == "10015567@N08_3655084291_d8b58466fa.mov"


# --- ActivityNet ---------------------------------------------------------------------------------------------------


def test_activitynet_strips_prefix_and_reads_up_to_the_rounded_up_duration(tmp_path):
    _touch(tmp_path, "uqiMw7tQ1Cc.mkv")
    dataset = load_dataset("activitynet", FIXTURES / "activitynet", "test", video_dir=tmp_path)
    assert [v.video_id for v in dataset.videos] == ["uqiMw7tQ1Cc", "bXdq2zI1Ms0", "FsS_NCZEfaI"]
    assert [v.end for v in dataset.videos] == [56.0, 74.0, 127.0]
    assert dataset.videos[0].start == 0.0 and dataset.videos[0].path.endswith("uqiMw7tQ1Cc.mkv")
    assert dataset.captions[0].text == "A weight lifting tutorial is given.  The coach helps the guy in red."
    assert dataset.paragraph
    assert len(load_dataset("activitynet", FIXTURES / "activitynet", "train").videos) == 2


def test_activitynet_id_without_annotation_is_an_error(tmp_path):
    shutil.copy(FIXTURES / "activitynet" / "val_1.json", tmp_path)
    (tmp_path / "val_ids.json").write_text(json.dumps(["v_uqiMw7tQ1Cc", "v_missing"]))
    with pytest.raises(DatasetFormatError, match=r"val_1\.json.*1 ids"):
        load_dataset("activitynet", tmp_path, "val")


# --- VATEX ---------------------------------------------------------------------------------------------------------


def test_vatex_reads_english_captions_for_the_listed_videos():
    dataset = load_dataset("vatex", FIXTURES / "vatex", "test")
    assert len(dataset.videos) == 3 and len(dataset.captions) == 6
    assert dataset.captions[2].text == "A woman is ironing a shirt."


def test_vatex_accepts_the_official_list_layout(tmp_path):
    official = [{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["A man plays guitar."], "chCap": ["..."]}]
    (tmp_path / "vatex_data.json").write_text(json.dumps(official))
    shutil.copy(FIXTURES / "vatex" / "train_list.txt", tmp_path)
    dataset = load_dataset("vatex", tmp_path, "train")
    assert [c.text for c in dataset.captions] == ["A man plays guitar."]


def test_vatex_skips_missing_videos_with_a_warning_count(tmp_path):
    _touch(tmp_path, "Ptf_2VRj-V0_000122_000132.mp4")
    with pytest.warns(UserWarning, match="2 of 3 video files are missing"):
        dataset = load_dataset("vatex", FIXTURES / "vatex", "test", video_dir=tmp_path, check_files=True)
    assert [v.video_id for v in dataset.videos] == ["Ptf_2VRj-V0_000122_000132"]
    assert {c.video_id for c in dataset.captions} == {"Ptf_2VRj-V0_000122_000132"}


# --- generic -------------------------------------------------------------------------------------------------------


def test_generic_csv_rows_with_segments_tags_and_absolute_paths():
    path = FIXTURES / "generic" / "test.csv"
    dataset = load_dataset("generic", path, "test")
    ids = [v.video_id for v in dataset.videos]
    assert ids == ["clips/ball.mp4", "clips/long.mp4#t=2,5", "clips/long.mp4#t=5,9", "/data/abs/cat.mp4"]
    assert dataset.videos[0].path == str(path.parent / "clips" / "ball.mp4")
    assert dataset.videos[3].path == "/data/abs/cat.mp4"
    assert (dataset.videos[1].start, dataset.videos[1].end) == (2.0, 5.0)
    assert dataset.captions[0].tags == frozenset({"temporal", "motion"})
    assert dataset.captions[3].tags == frozenset()
    assert dataset.caption_video_index().tolist() == [0, 0, 1, 2, 3]
    assert [c.text for c in dataset.subset("temporal").captions] == [
        "a red ball moves from the left to the right",
        "a square appears",
    ]


def test_generic_jsonl_matches_csv_and_video_dir_overrides_the_base(tmp_path):
    dataset = load_dataset("generic", FIXTURES / "generic" / "test.jsonl", "test", video_dir=tmp_path)
    assert [v.video_id for v in dataset.videos] == ["clips/ball.mp4", "clips/long.mp4#t=2,5"]
    assert dataset.videos[0].path == str(tmp_path / "clips" / "ball.mp4")
    assert dataset.captions[1].tags == frozenset({"static"})


def test_generic_finds_split_file_in_a_folder(tmp_path):
    (tmp_path / "val.jsonl").write_text('{"video": "a.mp4", "caption": "x"}\n')
    dataset = load_dataset("generic", tmp_path, "val")
    assert dataset.split == "val" and dataset.videos[0].path == str(tmp_path / "a.mp4")
    with pytest.raises(DatasetFormatError, match=r"test\.csv or test\.jsonl"):
        load_dataset("generic", tmp_path, "test")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("video,text\na.mp4,x\n", "missing column"),
        ("video,caption,start,end\na.mp4,x,5,2\n", "row 1 has end 2 s not after start 5 s"),
        ("video,caption,start\na.mp4,x,soon\n", "start='soon'"),
        ("video,caption\na.mp4,\n", "row 1 needs a non-empty"),
    ],
)
def test_generic_malformed_rows_are_located(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset("generic", path, "test")


def test_generic_jsonl_bad_line_is_located(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"video": "a.mp4", "caption": "x"}\n{"video": "b.mp4"\n')
    with pytest.raises(DatasetFormatError, match="line 2 is not valid JSON"):
        load_dataset("generic", path, "test")


# --- registry ------------------------------------------------------------------------------------------------------


def test_unknown_dataset_and_missing_root_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("kinetics", tmp_path, "test")
    with pytest.raises(DatasetFormatError, match="not found"):
        load_dataset("msvd", tmp_path / "nowhere", "test")
