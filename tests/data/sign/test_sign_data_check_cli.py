"""`visionzoo data check`: the first bad line stops with file:line; --skip-bad counts and lists."""

from test_sign_readers import P14T_ROWS, make_p14t

from visionzoo.cli import main


def test_data_check_stops_at_the_malformed_line_then_skip_bad_counts_it(tmp_path, capsys):
    make_p14t(tmp_path, rows=[P14T_ROWS[0], "broken|line|-1|-1|Signer01|A B"])
    assert main(["data", "check", "phoenix2014t", str(tmp_path), "--split", "train"]) == 2
    assert "PHOENIX-2014-T.train.corpus.csv:3:" in capsys.readouterr().err
    assert main(["data", "check", "phoenix2014t", str(tmp_path), "--split", "train", "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "1 samples read" in out and "skipped 1 entries (malformed 1)" in out and "corpus.csv:3" in out
