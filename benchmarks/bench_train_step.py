"""One full training step (D update, then G update) at the paper preset's shapes, phase by phase.

Usage::

    python -m benchmarks.bench_train_step [--batches 2 4] [--rounds 3] [--before PATH]
        [--memory] [--tiny] [--quick] [--device cpu|cuda] [--amp off|bf16|fp16] [--out DIR] [--name NAME]

Times :class:`ratlip_layers.training.GANTrainStep` against ``BaselineStep``, a straightforward
re-statement of the recipe (SPEC section 4) written here on the same networks: the reference's
passes in the reference's order, fake CLIP features computed once with their graph and a detached
copy given to D, NetD once on the real maps (judged against the matched and the mismatched
captions), MA-GP w.r.t. the real CLIP maps and the sentence, plain ``torch.optim.Adam`` and, as in
the reference, D's parameters left trainable during the generator's backward (their gradients are
cleared before the next D update). Both use the same generator, NetD/NetC and frozen CLIP (copies
of one initialisation), so the ratio is the step's own. ``--before PATH`` also times a step module
loaded from a file (a copy of an older ``step.py``) in the same interleaved rounds.

Shapes: open_clip ViT-B-32-quickgelu with random weights, 224 px, ``GeneratorConfig.preset("paper")``,
NetD 512 / NetC 128 channels (``RECIPES["paper"]``), fp32, CPU, one intra-op thread. Phases are
timed with ``GANTrainStep.on_phase`` (a callback at each phase's end, ``None`` by default); the
rounds are interleaved and medians are reported. ``--memory`` runs every (implementation, batch)
in a fresh subprocess and reports its peak resident set (``getrusage`` ``ru_maxrss``) after the
networks are built and after three steps: the step's peak is the difference. ``--tiny`` times the
tiny preset's step (``TrainConfig.resolve(preset="tiny")``: batch 32, 32 px, tiny CLIP) in
steps/s at 2 threads. ``--device cuda --amp fp16`` runs the same comparison on a GPU with
autocast and two GradScalers on both sides (as the reference trains); phases are then marked after a
``torch.cuda.synchronize()`` and ``--memory`` reports ``torch.cuda.max_memory_allocated`` per kind.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as bench_blocks.py

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratlip_layers import CLIPDiscriminator, CLIPTextAdapter, GeneratorConfig, RATLIPGenerator, build_clip
from ratlip_layers.clip import tiny_clip
from ratlip_layers.training import GANTrainStep, Precision
from ratlip_layers.training.config import RECIPES, TrainConfig

PHASES = ("text", "g_forward", "clip_real", "clip_fake", "d_heads", "magp", "backward", "optimizer")


class PhaseClock:
    """``clock(name)`` books the time since the previous mark to ``name``."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda  # synchronise at each mark, so a phase is charged for its own kernels
        self.times: dict[str, float] = defaultdict(float)
        self.last = time.perf_counter()

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.times = defaultdict(float)
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.times[name] += now - self.last
        self.last = now


class BaselineStep:
    """The recipe as the reference writes it (see the module docstring), with the same phase marks."""

    def __init__(
        self, generator, discriminator, text, *, lr_g, lr_d, sim_weight, magp_weight, magp_power, precision
    ):
        self.G, self.D, self.text = generator, discriminator, text
        self.precision = precision  # autocast and the two GradScalers, as the reference's AMP
        self.sim_weight, self.magp_weight, self.magp_power = sim_weight, magp_weight, magp_power
        self.opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=lr_g, betas=(0.0, 0.9))
        self.opt_d = torch.optim.Adam(
            [p for p in discriminator.parameters() if p.requires_grad], lr=lr_d, betas=(0.0, 0.9)
        )
        self.on_phase = None

    def __call__(self, images: Tensor, tokens: Tensor, *, step: int = 0) -> dict[str, float]:
        mark = self.on_phase or (lambda name: None)
        D, amp = self.D, self.precision
        with torch.no_grad():
            sentence = self.text(tokens).sentence.float()
        noise = torch.randn(images.shape[0], self.G.z_dim, device=images.device)
        mark("text")
        with torch.no_grad(), amp.autocast():
            real = D.encoder(images)
        maps = [m.detach().requires_grad_(True) for m in real.maps]
        sent = sentence.detach().requires_grad_(True)
        mark("clip_real")
        with amp.autocast():
            real_code = D.net_d(maps)
            pred_real = D.net_c(real_code, sent)
            err_real = F.relu(1.0 - pred_real).mean()
            err_mis = F.relu(1.0 + D.net_c(real_code, torch.cat((sent[1:], sent[:1])).detach())).mean()
            mark("d_heads")
            fake = self.G(noise, sentence)
            mark("g_forward")
            clip_fake = D.encoder(fake)
            mark("clip_fake")
            pred_fake = D.net_c(D.net_d([m.detach() for m in clip_fake.maps]), sentence)
            err_fake = F.relu(1.0 + pred_fake).mean()
            mark("d_heads")
            grads = torch.autograd.grad(pred_real.sum(), (*maps, sent), create_graph=True)
            norm = torch.cat([g.flatten(1) for g in grads], dim=1).norm(dim=1)
            magp = self.magp_weight * norm.pow(self.magp_power).mean()
            err_d = err_real + (err_fake + err_mis) / 2.0 + magp
        mark("magp")
        self.opt_d.zero_grad()
        amp.scaler_d.scale(err_d).backward()
        mark("backward")
        amp.scaler_d.step(self.opt_d)
        amp.scaler_d.update()
        mark("optimizer")
        with amp.autocast():
            output = D.net_c(D.net_d(clip_fake.maps), sentence)
            sim = F.cosine_similarity(clip_fake.embedding, sentence, dim=-1).mean()
            err_g = -output.mean() - self.sim_weight * sim
        mark("d_heads")
        self.opt_g.zero_grad()
        amp.scaler_g.scale(err_g).backward()
        mark("backward")
        amp.scaler_g.step(self.opt_g)
        amp.scaler_g.update()
        logs = {"loss_d": err_d.item(), "loss_g": err_g.item(), "magp": magp.item()}
        mark("optimizer")
        return logs


def load_step_class(path: Path):
    """``GANTrainStep`` of a ``step.py`` copy, imported as a module of ``ratlip_layers.training``."""
    spec = importlib.util.spec_from_file_location("ratlip_layers.training._step_" + Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GANTrainStep


def build_nets(preset: str, seed: int = 0, device: str = "cpu"):
    """Generator, discriminator, text adapter and token factory of a preset (paper: random ViT-B/32)."""
    torch.manual_seed(seed)
    recipe = RECIPES[preset]
    if preset == "paper":
        clip_model, tokenizer = build_clip("ViT-B-32-quickgelu", None)
        config = GeneratorConfig.preset("paper")
    else:
        cfg = TrainConfig.resolve(preset=preset)
        clip_model, tokenizer = tiny_clip()
        config = cfg.generator_config()
    clip_model = clip_model.to(device)
    G = RATLIPGenerator(config, clip_model, tokenizer=tokenizer).to(device)
    D = CLIPDiscriminator(clip_model, channels=recipe["d_channels"], joint_channels=recipe["d_joint_channels"])
    return G, D.to(device), CLIPTextAdapter(clip_model, tokenizer=tokenizer), tokenizer, recipe


def make_step(kind: str, nets, recipe, before: Path | None, amp: str = "off", device: str = "cpu"):
    G, D, text = nets
    kwargs = {k: recipe[k] for k in ("lr_g", "lr_d", "sim_weight", "magp_weight", "magp_power")}
    kwargs["precision"] = Precision(amp, torch.device(device).type)
    if kind == "baseline":
        return BaselineStep(G, D, text, **kwargs)
    cls = GANTrainStep if kind == "ours" else load_step_class(before)
    return cls(G, D, text, **kwargs)


def batch_inputs(preset: str, batch: int, tokenizer, size: int, device: str = "cpu"):
    g = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    captions = ["a small bird with a red head and grey wings", "a yellow flower with five petals"]
    return images.to(device), tokenizer([captions[i % 2] for i in range(batch)]).to(device)


def time_steps(kinds, preset, batch, rounds, threads, before, steps_per_round=1, amp="off", device="cpu"):
    """Interleaved rounds; per kind the median total and per-phase seconds (and, on CUDA, peak memory)."""
    torch.set_num_threads(threads)
    G, D, text, tokenizer, recipe = build_nets(preset, device=device)
    size = recipe["imsize"]
    images, tokens = batch_inputs(preset, batch, tokenizer, size, device)
    cuda = torch.device(device).type == "cuda"
    steps, peak = {}, {}
    # Each implementation trains its own copy of the networks (one shared frozen CLIP is read only).
    for kind in kinds:
        G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
        steps[kind] = make_step(kind, (G2, D2, G2.text), recipe, before, amp, device)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        for _ in range(2 if cuda else 1):  # warm-up (the second one runs with optimiser state)
            steps[kind](images, tokens)
        if cuda:
            peak[kind] = (torch.cuda.max_memory_allocated() - base) / 2**20
    clock = PhaseClock(cuda)
    totals: dict[str, list[float]] = {k: [] for k in kinds}
    phases: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            step = steps[kind]
            for _ in range(steps_per_round):
                step.on_phase = clock
                clock.start()
                t0 = time.perf_counter()
                step(images, tokens)
                if cuda:
                    torch.cuda.synchronize()
                totals[kind].append(time.perf_counter() - t0)
                for name, value in clock.times.items():
                    phases[kind][name].append(value)
    out = {}
    for kind in kinds:
        n = len(totals[kind])
        out[kind] = {
            "median_s": float(np.median(totals[kind])),
            "iqr_s": float(np.subtract(*np.percentile(totals[kind], [75, 25]))),
            "steps": n,
            "phases_s": {p: float(np.median(v + [0.0] * (n - len(v)))) for p, v in phases[kind].items()},
        }
        if cuda:
            out[kind]["peak_mib"] = peak[kind]
    return out


def peak_rss(kind: str, preset: str, batch: int, before: Path | None) -> dict:
    """Run in a fresh process: peak RSS (MiB) after building, and after three steps."""
    code = (
        "import json,resource,torch,sys;from pathlib import Path;"
        "from benchmarks.bench_train_step import build_nets,make_step,batch_inputs;"
        f"torch.set_num_threads(1);G,D,text,tok,recipe=build_nets({preset!r});"
        f"x,t=batch_inputs({preset!r},{batch},tok,recipe['imsize']);"
        f"s=make_step({kind!r},(G,D,text),recipe,{str(before) if before else None!r} and Path({str(before)!r}));"
        "a=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;[s(x,t) for _ in range(3)];"
        "b=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;print(json.dumps([a/1024,b/1024]))"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    built, after = json.loads(result.stdout.strip().splitlines()[-1])
    return {"built_mib": built, "peak_mib": after, "step_mib": after - built}


def markdown(results: dict) -> str:
    lines = [f"# Training step benchmark: {results['device_name']}", ""]
    lines.append(
        f"- date {results['date']}, torch {results['torch']}, threads {results['threads']}, "
        f"amp {results.get('amp', 'off')}, commit {results.get('commit', '?')}"
    )
    lines.append("")
    for batch, row in results["paper"].items():
        kinds = list(row)
        lines.append(f"## paper preset, batch {batch} (median seconds per phase)")
        lines.append("")
        lines.append("| phase | " + " | ".join(kinds) + " |")
        lines.append("|---|" + "---:|" * len(kinds))
        for phase in PHASES:
            cells = [f"{row[k]['phases_s'].get(phase, 0.0):.3f}" if row[k]["phases_s"] else "-" for k in kinds]
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
        lines.append("| **step (median)** | " + " | ".join(f"**{row[k]['median_s']:.3f}**" for k in kinds) + " |")
        base = row["baseline"]["median_s"]
        lines.append("| speedup vs baseline | " + " | ".join(f"{base / row[k]['median_s']:.2f}x" for k in kinds) + " |")
        if "peak_mib" in row["baseline"]:
            lines.append("| peak memory (MiB) | " + " | ".join(f"{row[k]['peak_mib']:.0f}" for k in kinds) + " |")
        lines.append("")
    if results.get("memory"):
        lines += ["## peak memory (ru_maxrss, MiB, fresh process per row)", ""]
        lines.append("| impl | batch | after build | after 3 steps | step's increase |")
        lines.append("|---|---:|---:|---:|---:|")
        for key, m in results["memory"].items():
            kind, batch = key.split("/")
            lines.append(f"| {kind} | {batch} | {m['built_mib']:.0f} | {m['peak_mib']:.0f} | {m['step_mib']:.0f} |")
        lines.append("")
    if results.get("tiny"):
        lines += ["## tiny preset step (batch 32, 32 px, 2 threads)", "", "| impl | steps/s | median ms |", "|---|---:|---:|"]
        for kind, t in results["tiny"].items():
            lines.append(f"| {kind} | {1 / t['median_s']:.2f} | {t['median_s'] * 1e3:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="*", default=[2, 4], help="paper-preset batches (none: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None, help="an older step.py to time side by side")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="also the tiny preset's step at 2 threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny preset only, batch 2, one round")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--name", default=None, help="output name (default train_step_<device>[_<amp>])")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    args = parser.parse_args(argv)
    from benchmarks.bench_blocks import device_name, git_commit

    device = torch.device(args.device)
    card = "cpu" if device.type == "cpu" else re.sub(r"[^a-z0-9]+", "_", device_name(device).lower()).strip("_")
    name = args.name or f"train_step_{card}" + ("" if args.amp == "off" else f"_{args.amp}")

    kinds = ["baseline"] + (["before"] if args.before else []) + ["ours"]
    preset = "tiny" if args.quick else "paper"
    batches = [2] if args.quick else args.batches
    rounds = 1 if args.quick else args.rounds
    results = {
        "device_name": device_name(device) if device.type == "cuda"
        else f"CPU, {args.threads} thread(s), {device_name(device)}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "commit": git_commit(),
        "amp": args.amp,
        "threads": args.threads,
        "preset": preset,
        "paper": {},
    }
    for batch in batches:
        results["paper"][str(batch)] = time_steps(
            kinds, preset, batch, rounds, args.threads, args.before, amp=args.amp, device=args.device
        )
        print(f"batch {batch}: " + ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in results["paper"][str(batch)].items()), flush=True)
    if args.memory and device.type == "cpu":  # on CUDA the rows above carry peak_mib
        results["memory"] = {f"{k}/{b}": peak_rss(k, preset, b, args.before) for b in batches for k in kinds}
    if args.tiny:
        results["tiny"] = time_steps(
            kinds, "tiny", 32, rounds, 2, args.before, steps_per_round=5, amp=args.amp,
            device=args.device,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"{name}.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
