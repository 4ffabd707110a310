"""Fast inference for a generator: whole-network ``torch.compile`` and CUDA-graph replay."""

from __future__ import annotations

import torch
from torch import Tensor

from .generator import RATLIPGenerator

__all__ = ["InferenceGenerator", "optimize_for_inference"]

WARMUP_CALLS = 3
"""Calls before a CUDA graph capture: they compile, autotune and settle the caching allocator."""


class InferenceGenerator:
    """A generator's ``(noise, sentence) -> images`` for inference, built by :func:`optimize_for_inference`.

    Each call checks its inputs, then runs without autograd; a CUDA graph is captured once per input
    shape and dtype (the output is a copy, valid after the next call).

    Args:
        generator: the generator to run (in eval mode).
        compile: run the whole generator through ``torch.compile`` (static shapes).
        cuda_graphs: capture and replay CUDA graphs (the generator must be on a CUDA device).

    Example:
        >>> from ratlip_layers.models import InferenceGenerator
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), tiny_clip()[0])
        >>> run = InferenceGenerator(G.eval(), compile=False, cuda_graphs=False)
        >>> run(torch.randn(2, 16), torch.randn(2, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, generator: RATLIPGenerator, *, compile: bool, cuda_graphs: bool) -> None:
        self.generator, self.compile, self.cuda_graphs = generator, compile, cuda_graphs
        self._forward = torch.compile(generator, dynamic=False) if compile else generator
        # Per input shapes and dtypes: (static noise, static sentence, graph, static output).
        self._graphs: dict[tuple, tuple[Tensor, Tensor, torch.cuda.CUDAGraph, Tensor]] = {}

    def __call__(self, noise: Tensor, sentence: Tensor) -> Tensor:
        """Images ``(B, 3, S, S)``, as the generator's forward."""
        self.generator._check_inputs(noise, sentence)
        with torch.no_grad():
            if not self.cuda_graphs:
                return self._forward(noise, sentence)
            key = (noise.shape, noise.dtype, sentence.shape, sentence.dtype)
            if key not in self._graphs:
                self._graphs[key] = self._capture(noise.clone(), sentence.clone())
            static_noise, static_sentence, graph, out = self._graphs[key]
            static_noise.copy_(noise)
            static_sentence.copy_(sentence)
            graph.replay()
            return out.clone()

    def _capture(self, noise: Tensor, sentence: Tensor) -> tuple:
        # Warm-up on a side stream, as CUDA graph capture requires.
        side, main = torch.cuda.Stream(noise.device), torch.cuda.current_stream(noise.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._forward(noise, sentence)
        main.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._forward(noise, sentence)
        return noise, sentence, graph, out

    def __repr__(self) -> str:
        args = f"compile={self.compile}, cuda_graphs={self.cuda_graphs}, captured_shapes={len(self._graphs)}"
        return f"InferenceGenerator({args})"


def optimize_for_inference(
    generator: RATLIPGenerator, *, compile: bool = True, cuda_graphs: bool | None = None
) -> InferenceGenerator:
    """Wrap a generator, switched to eval mode, for fast inference: ``torch.compile`` and, on CUDA,
    CUDA-graph replay, which removes the launch cost that dominates at small batches.

    Args:
        generator: a :class:`RATLIPGenerator`. Its weights are read at every call, so in-place
            updates (optimizer steps, EMA, ``load_state_dict``) are seen; after ``.to()``, wrap again.
        compile: wrap the generator in ``torch.compile`` (seconds to minutes on the first call).
        cuda_graphs: capture CUDA graphs; by default exactly when the generator is on a CUDA device.

    Returns:
        An :class:`InferenceGenerator`, called as ``run(noise, sentence)``.

    Example:
        >>> from ratlip_layers.models import optimize_for_inference
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), tiny_clip()[0])
        >>> run = optimize_for_inference(G, compile=False)  # compile=True in real use
        >>> run
        InferenceGenerator(compile=False, cuda_graphs=False, captured_shapes=0)
        >>> z, s = torch.randn(2, 16), torch.randn(2, 32)
        >>> torch.allclose(run(z, s), G(z, s), atol=1e-6), G.training
        (True, False)
    """
    if not isinstance(generator, RATLIPGenerator):
        raise TypeError(f"generator must be a RATLIPGenerator, got {type(generator).__name__}")
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be a bool, got {type(compile).__name__} ({compile!r})")
    if cuda_graphs is not None and not isinstance(cuda_graphs, bool):
        raise TypeError(f"cuda_graphs must be None or a bool, got {type(cuda_graphs).__name__}")
    device = generator.fc_code.weight.device
    if cuda_graphs is None:
        cuda_graphs = device.type == "cuda"
    elif cuda_graphs and device.type != "cuda":
        raise ValueError(
            f"cuda_graphs=True needs the generator on a CUDA device, but it is on {device}; "
            "move it with .cuda() or leave cuda_graphs=None to use CUDA graphs only where possible"
        )
    return InferenceGenerator(generator.eval(), compile=compile, cuda_graphs=cuda_graphs)
