"""Readers of the real sign-language layouts, on tiny hand-written fixtures that follow the spec's formats."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionzoo.core.errors import ConfigError, DataError, RegistryError
from visionzoo.data.sign import (
    SIGN_DATASETS, read_csl_daily, read_how2sign, read_msasl, read_phoenix2014, read_phoenix2014t,
    read_sign_dataset, read_wlasl, verify_media,
)
from visionzoo.data.sign.sample import list_sample_frames


def write_frames(folder: Path, names: list[str], size=(6, 8)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), 20 * i, np.uint8)).save(folder / name)


def assert_one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --- Phoenix-2014T ----------------------------------------------------------------------------------

P14T_HEADER = "name|video|start|end|speaker|orth|translation"
P14T_ROWS = [
    "11August_2010_Wednesday_tagesschau-2|11August_2010_Wednesday_tagesschau-2/1/*.png|-1|-1|Signer08|"
    "DRAUSSEN VORSICHT GLATT|draussen ist es \"glatt\" .",
    "25October_2010_Monday_tagesschau-17|25October_2010_Monday_tagesschau-17/1/*.png|-1|-1|Signer01|"
    "REGEN  SCHNEE|es gibt regen und schnee .",
]


def make_p14t(root: Path, rows=P14T_ROWS, split="train", frames=3) -> Path:
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join([P14T_HEADER, *rows]) + "\n")
    for row in rows:
        name = row.split("|")[0]
        write_frames(root / "features" / "fullFrame-210x260px" / split / name,
                     [f"images{i:04d}.png" for i in range(1, frames + 1)])
    return root


def test_phoenix2014t_reads_fields_glosses_and_frame_folders(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    assert [s.name for s in index] == ["11August_2010_Wednesday_tagesschau-2", "25October_2010_Monday_tagesschau-17"]
    first, second = index
    assert first.gloss == ["DRAUSSEN", "VORSICHT", "GLATT"]
    assert second.gloss == ["REGEN", "SCHNEE"]  # double spaces do not make empty glosses
    assert first.text == 'draussen ist es "glatt" .'  # quotes are literal: the file is not CSV-quoted
    assert (first.signer, second.signer) == ("Signer08", "Signer01")
    assert first.media == tmp_path / "features/fullFrame-210x260px/train/11August_2010_Wednesday_tagesschau-2"
    assert [p.name for p in list_sample_frames(first)] == ["images0001.png", "images0002.png", "images0003.png"]
    assert (first.origin_line, second.origin_line) == (2, 3)
    assert len(index.skipped) == 0


def test_phoenix2014t_finds_the_release_folder_and_takes_val_for_dev(tmp_path):
    make_p14t(tmp_path / "PHOENIX-2014-T-release-v3" / "PHOENIX-2014-T", split="dev")
    index = read_phoenix2014t(tmp_path, "val")
    assert index.split == "dev" and len(index) == 2


def test_phoenix2014t_unknown_split_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="expected one of train, dev, test"):
        read_phoenix2014t(make_p14t(tmp_path), "validation")


def test_phoenix2014t_malformed_line_names_file_and_line(tmp_path):
    make_p14t(tmp_path, rows=[P14T_ROWS[0], "broken|line|-1|-1|Signer01|A B"])
    with pytest.raises(DataError) as err:
        read_phoenix2014t(tmp_path, "train")
    msg = assert_one_line(err)
    assert "PHOENIX-2014-T.train.corpus.csv:3:" in msg and "expected 7" in msg


def test_phoenix2014t_empty_orth_is_malformed(tmp_path):
    make_p14t(tmp_path, rows=["a|a/1/*.png|-1|-1|Signer01| |text ."])
    with pytest.raises(DataError, match=r"corpus\.csv:2: column 'orth' is empty"):
        read_phoenix2014t(tmp_path, "train")


def test_phoenix2014t_wrong_header_fails_even_with_skip_bad(tmp_path):
    make_p14t(tmp_path)
    path = tmp_path / "annotations/manual/PHOENIX-2014-T.train.corpus.csv"
    path.write_text(path.read_text().replace("orth", "gloss"))
    with pytest.raises(DataError, match=r"corpus\.csv:1: header lacks \['orth'\]"):
        read_phoenix2014t(tmp_path, "train", skip_bad=True)


def test_phoenix2014t_missing_frame_folder_names_the_sample(tmp_path):
    make_p14t(tmp_path, rows=P14T_ROWS[:1])
    extra = "gone-1|gone-1/1/*.png|-1|-1|Signer02|A|a ."
    path = tmp_path / "annotations/manual/PHOENIX-2014-T.train.corpus.csv"
    path.write_text(path.read_text() + extra + "\n")
    with pytest.raises(DataError) as err:
        read_phoenix2014t(tmp_path, "train")
    msg = assert_one_line(err)
    assert "corpus.csv:3: sample 'gone-1': frame folder" in msg and "not found" in msg


def test_phoenix2014t_media_ignore_reads_annotations_without_frames(tmp_path):
    make_p14t(tmp_path, frames=0)
    for folder in (tmp_path / "features/fullFrame-210x260px/train").iterdir():
        folder.rmdir()
    assert len(read_phoenix2014t(tmp_path, "train", media="ignore")) == 2


def test_skip_bad_logs_and_counts_each_bad_entry(tmp_path, caplog):
    make_p14t(tmp_path)
    path = tmp_path / "annotations/manual/PHOENIX-2014-T.train.corpus.csv"
    path.write_text(path.read_text() + "too|few|fields\n" + "gone-1|gone-1/1/*.png|-1|-1|S|A|a .\n")
    with caplog.at_level(logging.WARNING, logger="visionzoo.data.sign"):
        index = read_phoenix2014t(tmp_path, "train", skip_bad=True)
    assert len(index) == 2
    assert index.skipped.counts == {"malformed": 1, "missing-media": 1}
    assert "corpus.csv:4:" in index.skipped.entries[0].message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "corpus.csv:4:" in logged and "gone-1" in logged and "skipped 2 entries" in logged


def test_media_count_counts_frames_and_reports_an_empty_folder(tmp_path):
    make_p14t(tmp_path, frames=3)
    empty = tmp_path / "features/fullFrame-210x260px/train/25October_2010_Monday_tagesschau-17"
    for p in empty.iterdir():
        p.unlink()
    index = read_phoenix2014t(tmp_path, "train", media="count", skip_bad=True)
    assert [s.num_frames for s in index] == [3]
    assert index.skipped.counts == {"empty-media": 1}
    assert "25October_2010_Monday_tagesschau-17" in index.skipped.entries[0].message


def test_missing_frame_in_the_middle_is_found_by_verify_media(tmp_path):
    make_p14t(tmp_path, frames=3)
    index = read_phoenix2014t(tmp_path, "train")
    (index[0].media / "images0002.png").unlink()
    with pytest.raises(DataError, match="images0002.png is missing"):
        verify_media(index.samples)


# --- Phoenix-2014 (multisigner) ---------------------------------------------------------------------

def make_p14(root: Path) -> Path:
    base = root / "phoenix2014-release" / "phoenix-2014-multisigner"
    ann = base / "annotations" / "manual"
    ann.mkdir(parents=True)
    (ann / "train.corpus.csv").write_text(
        "id|folder|signer|annotation\n"
        "01April_2010_Thursday_heute_default-0|01April_2010_Thursday_heute_default-0/1/*.png|Signer04|"
        "__ON__ LIEB ZUSCHAUER ABEND __OFF__\n"
    )
    write_frames(base / "features/fullFrame-210x260px/train/01April_2010_Thursday_heute_default-0/1",
                 [f"01April_2010_Thursday_heute.avi_pid0_fn{i:06d}-0.png" for i in (10, 9, 8, 11, 0, 1, 2, 3, 4, 5, 6, 7)])
    return base


def test_phoenix2014_reads_signer_glosses_and_prefixed_frames_in_order(tmp_path):
    base = make_p14(tmp_path)
    (s,) = read_phoenix2014(tmp_path, "train")
    assert (s.name, s.signer, s.text) == ("01April_2010_Thursday_heute_default-0", "Signer04", None)
    assert s.gloss == ["__ON__", "LIEB", "ZUSCHAUER", "ABEND", "__OFF__"]
    assert s.media == base / "features/fullFrame-210x260px/train/01April_2010_Thursday_heute_default-0/1"
    names = [p.name for p in list_sample_frames(s)]
    assert names == [f"01April_2010_Thursday_heute.avi_pid0_fn{i:06d}-0.png" for i in range(12)]


def test_phoenix2014_folder_outside_the_frame_root_is_malformed(tmp_path):
    base = make_p14(tmp_path)
    path = base / "annotations/manual/train.corpus.csv"
    path.write_text("id|folder|signer|annotation\nx|../../x/1/*.png|Signer01|A\n")
    with pytest.raises(DataError, match=r"train\.corpus\.csv:2: folder '\.\./\.\./x/1/\*\.png'"):
        read_phoenix2014(base, "train")


# --- CSL-Daily --------------------------------------------------------------------------------------

def make_csl(root: Path, info=None, split_lines=None) -> Path:
    (root / "sentence_label").mkdir(parents=True)
    info = info if info is not None else [
        {"name": "S000000_P0000_T00", "length": 3, "label_gloss": ["我", "想", "喝水"],
         "label_char": ["我", "想", "喝", "水", "。"], "label_word": ["我", "想", "喝水", "。"],
         "label_postag": ["r", "v", "v", "w"], "signer": 0},
        {"name": "S000001_P0003_T00", "length": 3, "label_gloss": ["你", "好"],
         "label_char": ["你", "好"], "label_word": ["你好"], "label_postag": ["l"], "signer": 3},
        {"name": "S000002_P0001_T00", "length": 3, "label_gloss": ["谢谢"],
         "label_char": ["谢", "谢"], "label_word": ["谢谢"], "label_postag": ["v"], "signer": 1},
    ]
    with open(root / "sentence_label" / "csl2020ct_v2.pkl", "wb") as f:
        pickle.dump({"info": info, "gloss_map": ["我", "想"], "char_map": [], "word_map": []}, f)
    split_lines = split_lines or ["S000000_P0000_T00|train", "S000001_P0003_T00|dev", "S000002_P0001_T00|train"]
    (root / "sentence_label" / "split_1.txt").write_text("\n".join(["name|split", *split_lines]) + "\n")
    for entry in info:
        write_frames(root / "sentence_frames-512x512" / entry["name"], [f"{i:06d}.jpg" for i in range(3)])
    return root


def test_csl_daily_reads_glosses_characters_signers_and_split(tmp_path):
    index = read_csl_daily(make_csl(tmp_path), "train")
    assert [s.name for s in index] == ["S000000_P0000_T00", "S000002_P0001_T00"]
    s = index[0]
    assert s.gloss == ["我", "想", "喝水"] and s.text == "我想喝水。" and s.signer == "0"
    assert s.media == tmp_path / "sentence_frames-512x512/S000000_P0000_T00"
    assert [p.name for p in list_sample_frames(s)] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert [x.name for x in read_csl_daily(tmp_path, "dev")] == ["S000001_P0003_T00"]


def test_csl_daily_listed_name_without_annotation_names_split_file_line(tmp_path):
    make_csl(tmp_path, split_lines=["S000000_P0000_T00|train", "S999999_P0000_T00|train"])
    with pytest.raises(DataError, match=r"split_1\.txt:3: sample 'S999999_P0000_T00' has no entry"):
        read_csl_daily(tmp_path, "train")


def test_csl_daily_entry_without_glosses_is_skipped_and_counted(tmp_path):
    info = [{"name": "S0", "label_gloss": ["A"], "label_char": ["a"]},
            {"name": "S1", "label_char": ["b"]}]
    make_csl(tmp_path, info=info, split_lines=["S0|train", "S1|train"])
    with pytest.raises(DataError, match=r"csl2020ct_v2\.pkl: info\[1\] \(S1\): missing keys \['label_gloss'\]"):
        read_csl_daily(tmp_path, "train")
    index = read_csl_daily(tmp_path, "train", skip_bad=True)
    # S1 is refused twice over: its label entry is malformed, so its split line points at nothing
    assert [s.name for s in index] == ["S0"] and index.skipped.counts == {"malformed": 2}


# --- WLASL ------------------------------------------------------------------------------------------

WLASL = [
    {"gloss": "book", "instances": [
        {"bbox": [385, 37, 885, 720], "fps": 25, "frame_end": -1, "frame_start": 1, "instance_id": 0,
         "signer_id": 118, "source": "aslbrick", "split": "train", "url": "http://x/1.mp4",
         "variation_id": 0, "video_id": "69241"},
        {"bbox": [1, 2, 3, 4], "fps": 25, "frame_end": 60, "frame_start": 12, "instance_id": 1,
         "signer_id": 90, "source": "signschool", "split": "test", "url": "u", "variation_id": 0,
         "video_id": "07069"}]},
    {"gloss": "drink", "instances": [
        {"bbox": [0, 0, 5, 5], "fps": 25, "frame_end": -1, "frame_start": 1, "instance_id": 0,
         "signer_id": 5, "source": "asldeafined", "split": "train", "url": "u", "variation_id": 1,
         "video_id": "17709"}]},
]


def make_wlasl(root: Path, data=WLASL, videos=("69241", "07069", "17709")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "WLASL_v0.3.json").write_text(json.dumps(data))
    (root / "videos").mkdir(exist_ok=True)
    for vid in videos:
        (root / "videos" / f"{vid}.mp4").write_bytes(b"")  # existence is all 'exists' checks
    return root


def test_wlasl_reads_labels_signers_and_frame_windows(tmp_path):
    make_wlasl(tmp_path)
    train = read_wlasl(tmp_path, "train")
    assert [(s.name, s.gloss, s.label, s.signer) for s in train] == [
        ("69241", ["book"], 0, "118"), ("17709", ["drink"], 1, "5")]
    assert train[0].frame_range == (0, None)  # frame_end -1: to the end
    assert train[0].media == tmp_path / "videos/69241.mp4" and train[0].meta["bbox"] == [385, 37, 885, 720]
    (test,) = read_wlasl(tmp_path, "test")
    assert test.frame_range == (11, 60)  # 1-based inclusive 12..60 -> 0-based [11, 60)


def test_wlasl_subset_uses_nslt_membership_split_and_class_id(tmp_path):
    make_wlasl(tmp_path)
    (tmp_path / "nslt_100.json").write_text(json.dumps({
        "69241": {"subset": "val", "action": [0, 1, 80]}, "17709": {"subset": "train", "action": [1, 1, 40]}}))
    assert [s.name for s in read_wlasl(tmp_path, "train", subset=100)] == ["17709"]
    assert [(s.name, s.label) for s in read_wlasl(tmp_path, "dev", subset=100)] == [("69241", 0)]


def test_wlasl_bad_frame_numbers_name_the_entry(tmp_path):
    data = json.loads(json.dumps(WLASL))
    data[1]["instances"][0]["frame_start"] = 0
    make_wlasl(tmp_path, data)
    with pytest.raises(DataError) as err:
        read_wlasl(tmp_path, "train")
    msg = assert_one_line(err)
    assert "WLASL_v0.3.json: [1] (drink).instances[0] (video 17709): frame_start 0" in msg


def test_wlasl_missing_video_is_an_error_or_a_counted_skip(tmp_path):
    make_wlasl(tmp_path, videos=("69241",))
    with pytest.raises(DataError, match=r"sample '17709': video file .*17709\.mp4 not found"):
        read_wlasl(tmp_path, "train")
    index = read_wlasl(tmp_path, "train", skip_bad=True)
    assert [s.name for s in index] == ["69241"] and index.skipped.counts == {"missing-media": 1}


def test_wlasl_json_syntax_error_names_the_line(tmp_path):
    tmp_path.joinpath("WLASL_v0.3.json").write_text('[\n{"gloss": "a",\n "instances": [}\n]')
    with pytest.raises(DataError, match=r"WLASL_v0\.3\.json:3: not valid JSON"):
        read_wlasl(tmp_path, "train")


def test_wlasl_zero_frame_video_is_reported_when_counting(tmp_path):
    av = pytest.importorskip("av")
    make_wlasl(tmp_path, data=WLASL[1:], videos=())
    path = tmp_path / "videos" / "17709.mp4"
    # an AVI container with a video stream and no frames (the probe reads the content, not the suffix)
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        c.start_encoding()  # writes the header; no frame is ever encoded
    with pytest.raises(DataError, match=r"sample '17709': video .*17709\.mp4 has zero frames"):
        read_wlasl(tmp_path, "train", media="count")


# --- MSASL ------------------------------------------------------------------------------------------

def make_msasl(root: Path, entries) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "MSASL_classes.json").write_text(json.dumps(["hello", "nice", "teacher"]))
    (root / "MSASL_train.json").write_text(json.dumps(entries))
    (root / "videos").mkdir(exist_ok=True)
    for i, entry in enumerate(entries):
        (root / "videos" / f"{entry.get('file', f'train_{i:05d}')}.mp4").write_bytes(b"")
    return root


MSASL_ENTRY = {"org_text": "Hello", "clean_text": "hello", "start_time": 0.0, "signer_id": 12, "signer": 12,
               "start": 0, "end": 30, "label": 0, "height": 360, "fps": 30.0, "end_time": 1.0,
               "url": "https://www.youtube.com/watch?v=abc", "text": "hello", "box": [0.1, 0.2, 0.9, 0.8],
               "width": 640}


def test_msasl_reads_class_names_signers_and_clip_paths(tmp_path):
    make_msasl(tmp_path, [MSASL_ENTRY, {**MSASL_ENTRY, "label": 2, "clean_text": "teacher", "signer_id": 3}])
    index = read_msasl(tmp_path, "train")
    assert [(s.name, s.gloss, s.label, s.signer) for s in index] == [
        ("train_00000", ["hello"], 0, "12"), ("train_00001", ["teacher"], 2, "3")]
    assert index[1].media == tmp_path / "videos/train_00001.mp4"
    assert index[0].meta["box"] == [0.1, 0.2, 0.9, 0.8]


def test_msasl_names_clips_by_their_file_field_which_must_be_unique(tmp_path):
    make_msasl(tmp_path, [{**MSASL_ENTRY, "file": "00007"}, {**MSASL_ENTRY, "file": "00012"}])
    index = read_msasl(tmp_path, "train")
    assert [s.name for s in index] == ["00007", "00012"] and index[1].media == tmp_path / "videos/00012.mp4"
    make_msasl(tmp_path, [{**MSASL_ENTRY, "file": "00007"}, {**MSASL_ENTRY, "file": "00007"}])
    with pytest.raises(DataError, match=r"MSASL_train\.json: \[1\] \(00007\): name already used by entry \[0\]"):
        read_msasl(tmp_path, "train")


def test_msasl_label_out_of_range_names_file_and_entry(tmp_path):
    make_msasl(tmp_path, [MSASL_ENTRY, {**MSASL_ENTRY, "label": 7}])
    with pytest.raises(DataError, match=r"MSASL_train\.json: \[1\] \(train_00001\): label 7; expected an int in \[0, 3\)"):
        read_msasl(tmp_path, "train")


def test_msasl_subset_keeps_the_first_n_classes(tmp_path):
    entries = [{**MSASL_ENTRY, "label": lab} for lab in (0, 150, 99)]
    (tmp_path / "MSASL_classes.json").write_text(json.dumps([f"c{i}" for i in range(200)]))
    (tmp_path / "MSASL_train.json").write_text(json.dumps(entries))
    assert [s.label for s in read_msasl(tmp_path, "train", subset=100, media="ignore")] == [0, 99]


# --- How2Sign ---------------------------------------------------------------------------------------

H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"


def make_h2s(root: Path, rows, nested=False) -> Path:
    name = "how2sign_realigned_test.csv"
    folder = root / "sentence_level/test/text/en/raw_text/re_aligned" if nested else root
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join([H2S_HEADER, *rows]) + "\n")
    clips = root / "sentence_level/test/rgb_front/raw_videos"
    clips.mkdir(parents=True, exist_ok=True)
    for row in rows:
        (clips / f"{row.split(chr(9))[3]}.mp4").write_bytes(b"")
    return root


H2S_ROWS = ["-fZc293MpJk\t-fZc293MpJk-1-rgb_front\t-fZc293MpJk_0\t-fZc293MpJk_0-1-rgb_front\t0.0\t1.55\tHi!",
            "-fZc293MpJk\t-fZc293MpJk-1-rgb_front\t-fZc293MpJk_1\t-fZc293MpJk_1-1-rgb_front\t1.55\t4.2\t"
            "\"Using your hands\" is the key."]


@pytest.mark.parametrize("nested", [False, True])
def test_how2sign_reads_tab_separated_sentences_and_clips(tmp_path, nested):
    make_h2s(tmp_path, H2S_ROWS, nested=nested)
    index = read_how2sign(tmp_path, "test")
    assert [s.name for s in index] == ["-fZc293MpJk_0-1-rgb_front", "-fZc293MpJk_1-1-rgb_front"]
    s = index[1]
    assert s.text == '"Using your hands" is the key.' and s.gloss == []
    assert (s.meta["start"], s.meta["end"], s.meta["video_id"]) == (1.55, 4.2, "-fZc293MpJk")
    assert s.media == tmp_path / "sentence_level/test/rgb_front/raw_videos/-fZc293MpJk_1-1-rgb_front.mp4"


def test_how2sign_non_numeric_time_names_file_and_line(tmp_path):
    make_h2s(tmp_path, [H2S_ROWS[0], H2S_ROWS[1].replace("1.55\t4.2", "1.55\tx")])
    with pytest.raises(DataError, match=r"how2sign_realigned_test\.csv:3: START_REALIGNED '1\.55', END_REALIGNED 'x'"):
        read_how2sign(tmp_path, "test")


def test_how2sign_line_with_a_missing_tab_is_malformed(tmp_path):
    make_h2s(tmp_path, [H2S_ROWS[0], H2S_ROWS[1].replace("\t", " ", 1)])
    with pytest.raises(DataError, match=r"how2sign_realigned_test\.csv:3: 6 '\\t'-separated fields; expected 7"):
        read_how2sign(tmp_path, "test")


# --- registry ---------------------------------------------------------------------------------------

def test_registry_maps_every_dataset_name_to_its_reader(tmp_path):
    assert SIGN_DATASETS == {"phoenix2014": read_phoenix2014, "phoenix2014t": read_phoenix2014t,
                             "csl-daily": read_csl_daily, "wlasl": read_wlasl, "msasl": read_msasl,
                             "how2sign": read_how2sign}
    assert len(read_sign_dataset("phoenix2014t", make_p14t(tmp_path), "train")) == 2


def test_registry_unknown_name_lists_the_known_ones():
    with pytest.raises(RegistryError, match="unknown sign dataset 'phoenix'; available: phoenix2014, "):
        read_sign_dataset("phoenix", ".", "train")
