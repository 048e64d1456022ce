import os
import sys
from pathlib import Path

import pytest

# engine tests import their toy method by module name
sys.path.insert(0, str(Path(__file__).parent / "engine"))
sys.path.insert(0, str(Path(__file__).parent / "data" / "sign"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config):
    """Under pytest-xdist, split the cores between the workers instead of every worker using all of them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    """Tests share 2 cores; one torch thread keeps timings steady and avoids oversubscription."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
