import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.mark.ddp
def test_two_process_cpu_ddp_ends_with_identical_weights(tmp_path):
    script = Path(__file__).parent / "ddp_script.py"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = torch.nn.Linear(8, 32).weight  # shape guard: the toy's first layer
    assert w0["net.0.weight"].shape == init.shape
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=f"{k} differs between ranks")
    # training happened: the run folder of rank 0 holds the exported model
    assert (tmp_path / "model" / "model.safetensors").is_file()
