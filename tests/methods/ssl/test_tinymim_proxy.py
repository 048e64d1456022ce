"""The paper's claim at CPU scale (spec 5.2 P2): a tiny ViT student distilled from an MAE teacher's token
relations beats the same student pre-trained by MAE itself on the 10%-label fine-tune and the linear probe.

Measured (tiny recipe: 60 distillation epochs; digits 16 px; seeds 0-2; methods/ssl/tinymim/README.md):
relation KD 92.0 ± 1.4 vs student MAE 87.7 ± 0.7 on the 10%-label fine-tune (gap 4.4, every relation seed above
every MAE seed) and 89.0 ± 1.5 vs 86.4 ± 1.9 on the linear probe (gap 2.5; per-seed gaps 2.0 / 2.8 / 2.8).
The margins below sit about 2.5 (fine-tune) and 1.5 (linear) standard errors of the measured gap below it.
Cost: the teacher (~4 min on an idle 2-core machine) plus 3 seeds x 2 arms in two processes (~5 min).
"""

import json
import subprocess
import sys

import pytest

# mean-over-3-seeds gap (relation - student MAE) we assert, per metric; set well below the measured gaps
MARGINS = {"linear": 0.5, "fewlabel_ft": 2.0}


@pytest.mark.slow
def test_relation_distillation_beats_student_mae_on_linear_probe_and_few_label_finetune(tmp_path):
    from visionzoo.data.synth import get_synth

    root, teacher = tmp_path / "digits", tmp_path / "teacher"
    get_synth("digits")(root, size=16)
    proxy = [sys.executable, "-m", "visionzoo.methods.ssl.tinymim.proxy", "--root", str(root),
             "--teacher-dir", str(teacher)]
    done = subprocess.run([*proxy, "--teacher-only"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    procs = {arm: subprocess.Popen([*proxy, "--seeds", "0", "1", "2", "--arms", arm,
                                    "--out", str(tmp_path / f"{arm}.json")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for arm in ("relation", "mae")}  # one process per arm: the two cores run both at once
    for proc in procs.values():
        out, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0, out[-3000:]
    summary = {arm: json.loads((tmp_path / f"{arm}.json").read_text())["summary"][arm] for arm in procs}
    for metric, margin in MARGINS.items():
        rel, mae = summary["relation"][metric][0], summary["mae"][metric][0]
        assert rel - mae >= margin, f"{metric}: relation {rel:.1f} vs student MAE {mae:.1f}"
