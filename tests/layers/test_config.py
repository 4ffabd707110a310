"""``layers/config.py``: how a layer's implementation is chosen (``impl=``, ``default_impl``, the
``RATLIP_LAYERS_IMPL`` override read once at import)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ratlip_layers import DFBlock, RATBlock, SAConv, ShuffleAttention
from ratlip_layers.layers import default_impl

LAYERS_WITH_IMPL = [
    pytest.param(lambda impl: DFBlock(6, 4, impl=impl), id="DFBlock"),
    pytest.param(lambda impl: RATBlock(6, 4, 3, impl=impl), id="RATBlock"),
    pytest.param(lambda impl: ShuffleAttention(8, 2, impl=impl), id="ShuffleAttention"),
    pytest.param(lambda impl: SAConv(4, 8, groups=2, impl=impl).attn, id="SAConv"),
]


class TestDefaultImpl:
    @pytest.mark.parametrize("build", LAYERS_WITH_IMPL)
    def test_impl_is_chosen_once_at_construction(self, build):
        assert default_impl() == "fused"  # no RATLIP_LAYERS_IMPL in the test environment
        assert build(None).impl == "fused" and build("fused").impl == "fused" and build("ref").impl == "ref"
        assert "impl='ref'" in repr(build("ref"))
        with pytest.raises(ValueError, match=r"impl must be one of \('ref', 'fused'\) or None, got 'cuda'"):
            build("cuda")

    def test_environment_variable_sets_the_default_once_at_import(self):
        script = textwrap.dedent(
            """
            import os
            from ratlip_layers import DFBlock, ShuffleAttention
            from ratlip_layers.layers import default_impl
            assert default_impl() == "ref", default_impl()
            assert DFBlock(4, 2).impl == ShuffleAttention(4, 2).impl == "ref"
            os.environ["RATLIP_LAYERS_IMPL"] = "fused"  # read at import only: no effect now
            assert DFBlock(4, 2).impl == "ref" and DFBlock(4, 2, impl="fused").impl == "fused"
            print("ok")
            """
        )

        def run(value: str) -> subprocess.CompletedProcess:
            env = {**os.environ, "RATLIP_LAYERS_IMPL": value}
            return subprocess.run(
                [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=120
            )

        result = run("ref")
        assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
        result = run("fast")
        assert result.returncode != 0
        assert "RATLIP_LAYERS_IMPL must be one of ('ref', 'fused'), got 'fast'" in result.stderr
