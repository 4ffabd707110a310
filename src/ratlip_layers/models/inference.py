"""Fast inference for a generator: whole-network ``torch.compile`` and CUDA-graph replay."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_same_device
from .generator import RATLIPGenerator

__all__ = ["InferenceGenerator", "optimize_for_inference"]

WARMUP_CALLS = 3
"""Calls before a CUDA graph capture: they compile, autotune and settle the caching allocator."""


class _Graph(NamedTuple):
    """A captured forward: its static input buffers, the graph, and the output buffer it writes."""

    noise: Tensor
    sentence: Tensor
    graph: torch.cuda.CUDAGraph
    out: Tensor


class InferenceGenerator:
    """A generator's ``(noise, sentence) -> images`` forward for inference, made by :func:`optimize_for_inference`.

    Each call checks its inputs like the generator does, then runs without autograd, through
    ``torch.compile`` when asked, and on CUDA by replaying a CUDA graph captured once per input
    shape and dtype (the inputs are copied into the graph's static buffers; the output is a copy, so
    it stays valid after the next call).

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
        self.generator = generator
        self.compile = compile
        self.cuda_graphs = cuda_graphs
        self._forward = torch.compile(generator, dynamic=False) if compile else generator
        self._graphs: dict[tuple, _Graph] = {}

    def __call__(self, noise: Tensor, sentence: Tensor) -> Tensor:
        """Images ``(B, 3, S, S)`` (unbounded, like the generator's forward) for ``noise`` and ``sentence``."""
        generator = self.generator
        generator._check_inputs(noise, sentence)
        check_same_device((("generator's weights", generator.fc_code.weight), ("noise", noise)))
        with torch.no_grad():
            if not self.cuda_graphs:
                return self._forward(noise, sentence)
            key = (tuple(noise.shape), noise.dtype, tuple(sentence.shape), sentence.dtype)
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._graphs[key] = self._capture(noise, sentence)
            captured.noise.copy_(noise)
            captured.sentence.copy_(sentence)
            captured.graph.replay()
            return captured.out.clone()

    def _capture(self, noise: Tensor, sentence: Tensor) -> _Graph:
        static_noise, static_sentence = noise.clone(), sentence.clone()
        device = noise.device
        # Warm-up on a side stream, as CUDA graph capture requires; the last one precedes capture.
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._forward(static_noise, static_sentence)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._forward(static_noise, static_sentence)
        return _Graph(static_noise, static_sentence, graph, out)

    def __repr__(self) -> str:
        return (
            f"InferenceGenerator(compile={self.compile}, cuda_graphs={self.cuda_graphs}, "
            f"captured_shapes={len(self._graphs)})"
        )


def optimize_for_inference(
    generator: RATLIPGenerator, *, compile: bool = True, cuda_graphs: bool | None = None
) -> InferenceGenerator:
    """Wrap a generator for fast inference: ``torch.compile`` and, on CUDA, CUDA-graph replay.

    The generator is switched to eval mode (as :meth:`RATLIPGenerator.generate` does) and runs
    without autograd. ``torch.compile`` traces the whole network once per input shape
    (``dynamic=False``), tracing the layers' reference ops, which Inductor fuses. CUDA graphs remove the
    per-kernel launch cost that dominates at small batches; they need static shapes, so each new
    ``(batch, dtype)`` is captured once and replayed afterwards.

    Args:
        generator: a :class:`RATLIPGenerator`. Its weights are read at every call, captured
            graphs included (they read the weights' memory), so in-place updates such as optimizer
            steps, EMA or ``load_state_dict`` are seen; after moving the generator (``.to()``),
            call this function again.
        compile: wrap the generator in ``torch.compile`` (seconds to minutes on the first call).
        cuda_graphs: capture CUDA graphs; ``None`` (default) means yes exactly when the generator
            is on a CUDA device, so the same call falls back to plain calls on a CPU.

    Returns:
        An :class:`InferenceGenerator`, called as ``run(noise, sentence)``.

    Raises:
        TypeError: ``generator`` is not a :class:`RATLIPGenerator`, or a switch is not a bool.
        ValueError: ``cuda_graphs=True`` for a generator that is not on a CUDA device.

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
        raise TypeError(
            f"cuda_graphs must be a bool or None, got {type(cuda_graphs).__name__} ({cuda_graphs!r})"
        )
    device = generator.fc_code.weight.device
    if cuda_graphs is None:
        cuda_graphs = device.type == "cuda"
    elif cuda_graphs and device.type != "cuda":
        raise ValueError(
            f"cuda_graphs=True needs the generator on a CUDA device, but it is on {device}; "
            "move it with .cuda() or leave cuda_graphs=None to use CUDA graphs only where possible"
        )
    generator.eval()
    return InferenceGenerator(generator, compile=compile, cuda_graphs=cuda_graphs)
