import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=15, deadline=None)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    # float32 means float32 on a GPU too: cuDNN would otherwise run convolutions in TF32 (10-bit
    # mantissa), and two memory formats, picking different algorithms, would differ by about 1e-3.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default="cpu",
        help="device of the tests that take the `device` fixture: cpu (default) or cuda, for a GPU machine",
    )


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    """The ``--device`` the suite was asked to run on; a missing CUDA device fails loudly, not skips."""
    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.fail("--device cuda was given, but torch sees no CUDA device")
    return dev
