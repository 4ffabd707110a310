import pytest
import torch


@pytest.fixture(scope="session")
def dtype() -> torch.dtype:
    """The floating dtype of the smoke checks; gradcheck and the equation checks pin float64 themselves."""
    return torch.float32
