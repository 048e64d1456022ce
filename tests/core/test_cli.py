import subprocess
import sys

import pytest

from visionzoo.cli import main


def test_list_shows_all_twenty_methods_with_status(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("slimclr", "twostream", "anifacegan", "centerclip"):
        assert name in out
    assert "proxy reproduced" in out and "planned" in out


def test_unknown_recipe_key_is_one_clean_line(capsys):
    assert main(["train", "slimclr/tiny", "objective.bogus=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "objective.bogus: unknown key" in err and "tiny.yaml" in err


def test_debug_flag_shows_the_traceback():
    proc = subprocess.run([sys.executable, "-m", "visionzoo", "--debug", "train", "slimclr/nope"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("cmd", [["--help"], ["train", "--help"], ["eval", "--help"], ["data", "synth", "--help"],
                                 ["bench", "--help"], ["list", "--help"], ["keypoints", "extract", "--help"],
                                 ["demo", "--help"]])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd)
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out


def test_predict_help_is_method_specific(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "slimclr", "--help"])
    assert "--bank" in capsys.readouterr().out


def test_data_synth_writes_and_rejects_unknown_options(tmp_path, capsys):
    assert main(["data", "synth", "digits", str(tmp_path / "d"), "size=8"]) == 0
    assert (tmp_path / "d" / "train" / "3").is_dir()
    assert main(["data", "synth", "digits", str(tmp_path / "e"), "colour=blue"]) == 2
    assert "unknown option 'colour'" in capsys.readouterr().err


def test_models_listing(capsys):
    assert main(["list", "--models", "slimclr*"]) == 0
    assert capsys.readouterr().out.split() == ["slimclr_resnet18", "slimclr_resnet50", "slimclr_tiny"]


def test_eval_predictions_scores_a_cslr_file(tmp_path, capsys):
    (tmp_path / "hyp.tsv").write_text("a\tHELLO WORLD\nb\tGOOD\n")
    (tmp_path / "ref.tsv").write_text("a\tHELLO WORLD\nb\tGOOD MORNING\n")
    assert main(["eval-predictions", str(tmp_path / "hyp.tsv"), "--kind", "cslr", "--references",
                 str(tmp_path / "ref.tsv"), "--out", str(tmp_path / "m.json")]) == 0
    import json

    metrics = json.loads((tmp_path / "m.json").read_text())
    assert abs(metrics["wer"] - 25.0) < 1e-6 or abs(metrics["wer"] - 0.25) < 1e-9
    (tmp_path / "bad.tsv").write_text("a HELLO\n")
    assert main(["eval-predictions", str(tmp_path / "bad.tsv"), "--kind", "cslr", "--references",
                 str(tmp_path / "ref.tsv")]) == 2
    assert "bad.tsv:1" in capsys.readouterr().err
