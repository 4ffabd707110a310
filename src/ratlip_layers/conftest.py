"""Doctest namespace: every public docstring may use ``torch`` and the package's names unimported."""

import pytest
import torch

import ratlip_layers


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["torch"] = torch
    doctest_namespace["nn"] = torch.nn
    for name in ratlip_layers.__all__:
        doctest_namespace[name] = getattr(ratlip_layers, name)
    torch.manual_seed(0)
