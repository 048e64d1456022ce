import os
import sys
from pathlib import Path

import pytest

# engine tests import their toy method by module name
sys.path.insert(0, str(Path(__file__).parent / "engine"))
sys.path.insert(0, str(Path(__file__).parent / "data" / "sign"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    """Tests share 2 cores; one torch thread keeps timings steady and avoids oversubscription."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
