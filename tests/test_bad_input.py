"""A table of bad inputs across the public API: each gets a clear error at our boundary, of the
documented type, whose message names what was expected and what arrived."""

import numpy as np
import pytest
import torch

from ratlip_layers import (
    DFBlock,
    GeneratorConfig,
    LSTMAffine,
    RATBlock,
    RATLIPGenerator,
    SAConv,
    ShuffleAttention,
    StateFromNoise,
    tiny_clip,
)
from ratlip_layers.clip import CLIPTextAdapter


@pytest.fixture(scope="module")
def generator():
    clip_model, tokenizer = tiny_clip()
    return RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)


CONSTRUCTORS = [
    ("float size", lambda: DFBlock(8.0, 4), TypeError, "cond_dim must be an int, got float (8.0)"),
    ("bool size", lambda: RATBlock(8, True), TypeError, "num_features must be an int, got bool"),
    ("zero size", lambda: ShuffleAttention(0, 2), ValueError, "channels must be a positive int, got 0"),
    ("string size", lambda: SAConv("8", 4), TypeError, "in_channels must be an int, got str ('8')"),
    ("integer dtype", lambda: DFBlock(8, 4, dtype=torch.int64), TypeError, "floating-point torch.dtype, got torch.int64"),
    ("string dtype", lambda: ShuffleAttention(8, 2, dtype="float32"), TypeError, "got 'float32'"),
    ("unknown device", lambda: DFBlock(8, 4, device="gpu"), ValueError, "device string such as 'cpu'"),
    ("unknown device (SA)", lambda: ShuffleAttention(8, 2, device="gpu"), ValueError, "got 'gpu'"),
    ("string slope", lambda: DFBlock(8, 4, negative_slope="0.2"), TypeError, "negative_slope must be a number"),
    ("nan slope", lambda: DFBlock(8, 4, negative_slope=float("nan")), ValueError, "negative_slope must be finite"),
    ("unknown impl", lambda: DFBlock(8, 4, impl="cuda"), ValueError, "impl must be one of ('ref', 'fused')"),
    ("RAT unknown device", lambda: RATBlock(8, 4, hidden_size=6, device="gpu"), ValueError, "got 'gpu'"),
    ("RAT string slope", lambda: RATBlock(8, 4, hidden_size=6, negative_slope="x"), TypeError, "negative_slope"),
    ("noise integer dtype", lambda: StateFromNoise(4, 6, dtype=torch.int32), TypeError, "got torch.int32"),
    ("LSTMAffine unknown device", lambda: LSTMAffine(8, 4, hidden_size=6, device="gpu"), ValueError, "got 'gpu'"),
]


@pytest.mark.parametrize(("build", "error", "message"), [c[1:] for c in CONSTRUCTORS], ids=[c[0] for c in CONSTRUCTORS])
def test_constructor_arguments(build, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_integer_sizes_accept_what_nn_linear_accepts():
    block = DFBlock(np.int64(8), torch.tensor(4))
    assert (block.cond_dim, block.num_features) == (8, 4) and type(block.cond_dim) is int
    assert StateFromNoise(np.int32(3), np.int16(5)).hidden_size == 5


def test_integer_recurrent_state_is_refused_like_integer_inputs():
    layer = LSTMAffine(8, 4, hidden_size=6)
    state = (torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="state h must be a floating-point tensor, got dtype torch.int64"):
        layer(torch.randn(2, 4, 3, 3), torch.randn(2, 8), state)


GENERATE = [
    ("empty list", [], ValueError, "at least one caption, got an empty list"),
    ("None", None, TypeError, "captions must be a list of str .* got NoneType"),
    ("a bare string", "a red circle", TypeError, "wrap a single caption in a list"),
    ("not strings", ["a red circle", 2], TypeError, r"captions\[1\] must be a str, got int \(2\)"),
    ("no sentence embeddings", torch.zeros(0, 32), ValueError, "at least one sentence embedding"),
    ("no token ids", torch.zeros(0, 16, dtype=torch.long), ValueError, "at least one caption, got shape"),
]


@pytest.mark.parametrize(("inputs", "error", "message"), [c[1:] for c in GENERATE], ids=[c[0] for c in GENERATE])
def test_generate(generator, inputs, error, message):
    with pytest.raises(error, match=message):
        generator.generate(inputs)


def test_text_adapter_names_the_bad_caption():
    clip_model, tokenizer = tiny_clip()
    text = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
    with pytest.raises(TypeError, match=r"captions\[0\] must be a str, got bytes"):
        text([b"a red circle"])


def _sweep_cases():
    """Bad inputs found by sweeping every public name: (id, call, exception, message fragment)."""
    from PIL import Image

    from ratlip_layers.data import CaptionCollate, ResumableSampler, ShapesDataset, build_dataset, draw_seed, eval_transform
    from ratlip_layers.data import parse_shapes_caption, render_shape, train_transform
    from ratlip_layers.layers import RecurrentMemory, ThreadedRATBlock, convert_to_rat, modulate_twice
    from ratlip_layers.metrics import build_metrics, evaluate_generator, fixed_noise
    from ratlip_layers.models import convert_galip_discriminator, convert_galip_generator, read_checkpoint
    from ratlip_layers.training import EMA, CheckpointManager, GANTrainStep, Trainer, captioned_grid
    from ratlip_layers.clip import CLIPImageEncoder
    from ratlip_layers.training import DistributedContext, generator_loss, load_checkpoint, sample_images

    from ratlip_layers.data import CUBDataset, load_filenames
    from ratlip_layers.metrics import CLIPScore, MetricContext
    from ratlip_layers.models import CLIPDiscriminator

    clip_model, tokenizer = tiny_clip()
    x, g = torch.randn(2, 4, 3, 3), torch.randn(2, 4)
    lin = torch.nn.Linear(2, 2)
    image = Image.new("RGB", (8, 8))
    collate = CaptionCollate(lambda c: torch.zeros(len(c), 4))
    return [
        ("modulate_twice gamma shape", lambda: modulate_twice(x, torch.randn(2, 5), g, g, g), ValueError, r"gamma1 must have shape \(B, C\) = \(2, 4\) to match x, got \(2, 5\)"),
        ("modulate_twice beta None", lambda: modulate_twice(x, g, None, g, g), TypeError, "beta1 must be a torch.Tensor .* got NoneType"),
        ("modulate_twice integer x", lambda: modulate_twice(x.long(), g, g, g, g), TypeError, "x must be a floating-point tensor, got dtype torch.int64"),
        ("modulate_twice other device", lambda: modulate_twice(x, g, g, g, g.to("meta")), ValueError, "beta2 is on meta but x is on cpu"),
        ("modulate_twice string slope", lambda: modulate_twice(x, g, g, g, g, "0.2"), TypeError, "negative_slope must be a number, got str"),
        ("state on another device", lambda: LSTMAffine(8, 4, hidden_size=6)(x, torch.randn(2, 8), (torch.zeros(2, 6, device="meta"),) * 2), ValueError, "state h is on meta but x is on cpu"),
        ("shuffle attention negative eps", lambda: ShuffleAttention(8, 2, eps=-1.0), ValueError, "eps must be positive, got -1.0"),
        ("shuffle attention string eps", lambda: ShuffleAttention(8, 2, eps="1e-5"), TypeError, "eps must be a number, got str"),
        ("memory init not a StateFromNoise", lambda: RecurrentMemory(6, init="zeros"), TypeError, "init must be None or a StateFromNoise, got str"),
        ("memory negative noise_index", lambda: RecurrentMemory(6, noise_index=-1), ValueError, "noise_index must be a non-negative int, got -1"),
        ("memory int noise_name", lambda: RecurrentMemory(6, noise_name=3), TypeError, r"noise_name must be None or a str, got int \(3\)"),
        ("threaded block None", lambda: ThreadedRATBlock(None, RecurrentMemory(6)), TypeError, "block must be a RATBlock, got NoneType"),
        ("threaded memory None", lambda: ThreadedRATBlock(RATBlock(8, 4, hidden_size=6), None), TypeError, "memory must be a RecurrentMemory, got NoneType"),
        ("convert_to_rat None", lambda: convert_to_rat(None), TypeError, "model must be a torch.nn.Module, got NoneType"),
        ("galip generator None", lambda: convert_galip_generator(None), TypeError, "state_dict must be a state dict .* got NoneType"),
        ("galip discriminator list", lambda: convert_galip_discriminator([], {}), TypeError, "net_d must be a state dict .* got list"),
        ("galip non-tensor value", lambda: convert_galip_generator({"a": 1}), TypeError, "must map str keys to tensors, got str key 'a' -> int"),
        ("read_checkpoint None", lambda: read_checkpoint(None), TypeError, "source must be a path .* got NoneType"),
        ("read_checkpoint int part", lambda: read_checkpoint({"netG": {}}, 3), TypeError, r"part must be a str such as 'netG', got int \(3\)"),
        ("sampler rank >= replicas", lambda: ResumableSampler(list(range(4)), num_replicas=2, rank=2), ValueError, r"rank must be in \[0, num_replicas - 1\] = \[0, 1\], got 2"),
        ("sampler zero replicas", lambda: ResumableSampler(list(range(4)), num_replicas=0), ValueError, "num_replicas must be a positive int, got 0"),
        ("sampler float seed", lambda: ResumableSampler(list(range(4)), seed=1.5), TypeError, r"seed must be an int, got float \(1.5\)"),
        ("sampler unsized dataset", lambda: ResumableSampler(None), TypeError, "dataset must be a sized Dataset .* got NoneType"),
        ("sampler string epoch", lambda: ResumableSampler(list(range(4))).set_epoch("1"), TypeError, "epoch must be an int, got str"),
        ("collate empty batch", lambda: CaptionCollate(lambda c: torch.zeros(len(c), 4))([]), ValueError, "at least one .* got an empty batch"),
        ("collate triple", lambda: collate([(torch.zeros(3, 8, 8), "a", 1)]), TypeError, r"items\[0\] must be an \(image tensor, caption\) pair, got tuple of \(Tensor, str, int\)"),
        ("collate bare image", lambda: collate([torch.zeros(3, 8, 8)]), TypeError, r"items\[0\] must be an \(image tensor, caption\) pair, got Tensor"),
        ("collate PIL image", lambda: collate([(image, "a")]), TypeError, r"items\[0\] must be .* pair, got tuple of \(Image, str\)"),
        ("collate mixed sizes", lambda: collate([(torch.zeros(3, 8, 8), "a"), (torch.zeros(3, 16, 16), "b")]), ValueError, r"items\[1\]'s image must have the shape of items\[0\]'s, \(3, 8, 8\), got \(3, 16, 16\)"),
        ("collate int caption", lambda: collate([(torch.zeros(3, 8, 8), "a"), (torch.zeros(3, 8, 8), 7)]), TypeError, r"captions\[1\] must be a str, got int \(7\)"),
        ("eval_transform empty image", lambda: eval_transform(Image.new("RGB", (0, 8)), 8), ValueError, r"image must have a width and height >= 1, got size \(0, 8\)"),
        ("train_transform empty image", lambda: train_transform(Image.new("RGB", (8, 0)), 8, torch.Generator()), ValueError, r"got size \(8, 0\)"),
        ("build_dataset zero samples", lambda: build_dataset("shapes", num_samples=0), ValueError, "num_samples must be a positive int, got 0"),
        ("shapes string seed", lambda: ShapesDataset(4, seed="1"), TypeError, r"seed must be an int, got str \('1'\)"),
        ("shapes negative seed", lambda: ShapesDataset(4, seed=-1), ValueError, "seed must be a non-negative int, got -1"),
        ("draw_seed float part", lambda: draw_seed(0, 1.5), TypeError, r"draw_seed parts must be ints, got float \(1.5\) at position 1"),
        ("eval_transform not an image", lambda: eval_transform(torch.zeros(3, 8, 8), 8), TypeError, "image must be a PIL.Image.Image, got Tensor"),
        ("eval_transform zero size", lambda: eval_transform(image, 0), ValueError, "size must be a positive int, got 0"),
        ("train_transform no generator", lambda: train_transform(image, 8, None), TypeError, "generator must be a torch.Generator, got NoneType"),
        ("parse_shapes_caption None", lambda: parse_shapes_caption(None), TypeError, "caption must be a str, got NoneType"),
        ("render_shape no spec", lambda: render_shape(None, 8), TypeError, "spec must be a ShapeSpec, got NoneType"),
        ("shapes index out of range", lambda: ShapesDataset(4)[10], IndexError, "index 10 is out of range for a dataset of 4 samples"),
        ("fixed_noise no indices", lambda: fixed_noise([], 4, 0), ValueError, "indices must be a non-empty list .* got an empty list"),
        ("fixed_noise zero z_dim", lambda: fixed_noise([0], 0, 0), ValueError, "z_dim must be a positive int, got 0"),
        ("build_metrics no context", lambda: build_metrics("shapes", None), TypeError, "context must be a MetricContext, got NoneType"),
        ("evaluate_generator bad device", lambda: evaluate_generator(None, None, {}, num_images=2, z_dim=4, device="gpu"), ValueError, "got 'gpu'"),
        ("evaluate_generator zero batch", lambda: evaluate_generator(None, None, {}, num_images=2, z_dim=4, batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
        ("evaluate_generator zero images", lambda: evaluate_generator(None, None, {}, num_images=0, z_dim=4), ValueError, "num_images must be a positive int, got 0"),
        ("evaluate_generator rank >= world", lambda: evaluate_generator(None, None, {}, num_images=2, z_dim=4, rank=2, world_size=2), ValueError, r"rank must be an int in \[0, world_size - 1\] = \[0, 1\], got 2"),
        ("EMA no module", lambda: EMA(None), TypeError, "module must be a torch.nn.Module, got NoneType"),
        ("EMA string decay", lambda: EMA(lin, decay="0.9"), TypeError, "decay must be a number, got str"),
        ("train step no generator", lambda: GANTrainStep(None, lin, lin), TypeError, "generator must be a torch.nn.Module, got NoneType"),
        ("train step zero lr", lambda: GANTrainStep(lin, lin, lin, lr_d=0.0), ValueError, "lr_d must be positive, got 0.0"),
        ("train step string lr", lambda: GANTrainStep(lin, lin, lin, lr_g="1e-4"), TypeError, "lr_g must be a number, got str"),
        ("trainer no config", lambda: Trainer(None), TypeError, "config must be a TrainConfig, got NoneType"),
        ("sample_images no generator", lambda: sample_images(None, ["a"], n=1), TypeError, "generator must be a torch.nn.Module, got NoneType"),
        ("captioned_grid zero columns", lambda: captioned_grid(torch.zeros(2, 3, 8, 8), ["a", "b"], columns=0), ValueError, "columns must be a positive int, got 0"),
        ("captioned_grid no captions", lambda: captioned_grid(torch.zeros(0, 3, 8, 8), [], columns=1), ValueError, "captions must hold at least one caption, got an empty list"),
        ("sample_images a bare caption", lambda: sample_images(lin, "a red circle", n=1), TypeError, "captions must be a list of str .* got str"),
        ("sample_images float n", lambda: sample_images(lin, ["a"], n=2.0), TypeError, r"n must be an int, got float \(2.0\)"),
        ("sample_images not a generator", lambda: sample_images(lin, ["a"], n=1), TypeError, r"generator must be a RATLIPGenerator \(with z_dim.*got Linear"),
        ("sample_images text_encoder str", lambda: sample_images(lin, ["a"], n=1, text_encoder="clip"), TypeError, "text_encoder must be None or callable .* got str"),
        ("generator_loss nan weight", lambda: generator_loss(torch.zeros(2), torch.zeros(2, 8), torch.zeros(2, 8), sim_weight=float("nan")), ValueError, "sim_weight must be finite, got nan"),
        ("generator_loss integer logits", lambda: generator_loss(torch.zeros(2, dtype=torch.long), torch.zeros(2, 8), torch.zeros(2, 8)), TypeError, "fake_logits must be a floating-point tensor, got dtype torch.int64"),
        ("load_checkpoint None", lambda: load_checkpoint(None), TypeError, r"path must be a path \(str or os.PathLike\), got NoneType"),
        ("load_checkpoint bad map_location", lambda: load_checkpoint("x", map_location="gpu"), ValueError, "map_location must be .* got 'gpu'"),
        ("checkpoint manager None root", lambda: CheckpointManager(None), TypeError, "root must be a path .* got NoneType"),
        ("load_filenames None", lambda: load_filenames(None), TypeError, "path must be a path .* got NoneType"),
        ("CUB root None", lambda: CUBDataset(None), TypeError, "root must be a path .* got NoneType"),
        ("distributed rank >= world", lambda: DistributedContext(rank=2, world_size=2), ValueError, r"rank must be an int in \[0, world_size - 1\] = \[0, 1\], got 2"),
        ("distributed negative rank", lambda: DistributedContext(rank=-1), ValueError, "rank must be a non-negative int, got -1"),
        ("distributed zero world", lambda: DistributedContext(world_size=0), ValueError, "world_size must be a positive int, got 0"),
        ("distributed bad device", lambda: DistributedContext(device="gpu"), ValueError, "got 'gpu'"),
        ("distributed no device", lambda: DistributedContext(device=None), TypeError, "device must be a torch.device .* got None"),
        ("image encoder empty batch", lambda: CLIPImageEncoder(clip_model)(torch.zeros(0, 3, 32, 32)), ValueError, r"images must hold at least one image .* got shape \(0, 3, 32, 32\)"),
        ("image encoder zero height", lambda: CLIPImageEncoder(clip_model)(torch.zeros(1, 3, 0, 32)), ValueError, r"resized to the tower's 32x32\), got shape \(1, 3, 0, 32\)"),
        ("discriminator zero channels", lambda: CLIPDiscriminator(clip_model, channels=0), ValueError, "channels must be a positive int, got 0"),
        ("discriminator bool joint channels", lambda: CLIPDiscriminator(clip_model, joint_channels=True), TypeError, "joint_channels must be .*int.* got bool"),
        ("metric context unknown fid", lambda: MetricContext(clip_model, tokenizer, fid_features="incepton"), ValueError, "fid_features must be 'clip' or one of .* got 'incepton'"),
        ("metric context no weights", lambda: MetricContext(clip_model, tokenizer, fid_features="inception"), ValueError, "needs the local weights file"),
        ("metric context missing weights", lambda: MetricContext(clip_model, tokenizer, fid_features="torchvision", inception_weights="no/such.pth"), ValueError, "inception_weights must be an existing weights file, got 'no/such.pth'"),
        ("clip score images None", lambda: CLIPScore(clip_model, tokenizer=tokenizer).update(None, ["a"]), TypeError, r"images must be a torch.Tensor of shape \(B, 3, H, W\), got NoneType"),
        ("clip score uint8 images", lambda: CLIPScore(clip_model, tokenizer=tokenizer).update(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), ["a"]), TypeError, "images must be a floating-point tensor, got dtype torch.uint8"),
    ]


SWEEP = _sweep_cases()


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in SWEEP], ids=[c[0] for c in SWEEP])
def test_public_api_sweep(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda G: G(torch.randn(0, G.z_dim), torch.randn(0, 32)), ValueError, r"at least one sample, got shape \(0, 16\)"),
        (lambda G: G(torch.randn(2, G.z_dim, device="meta"), torch.randn(2, 32, device="meta")), ValueError, "noise is on meta but the generator is on cpu"),
        (lambda G: G.generate(["a red circle"], seed="0"), TypeError, r"seed must be an int, got str \('0'\)"),
    ],
    ids=["empty batch", "other device", "string seed"],
)
def test_generator_forward(generator, call, error, message):
    with pytest.raises(error, match=message):
        call(generator)


def test_files_and_directories(tmp_path):
    from ratlip_layers.metrics import save_fid_statistics
    from ratlip_layers.models import read_checkpoint
    from ratlip_layers.training.checkpoint import save_checkpoint

    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{empty} is not a readable checkpoint"):
        read_checkpoint(empty)
    with pytest.raises(ValueError, match=f"checkpoint file {tmp_path} is a directory"):
        read_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=f"checkpoint file {tmp_path / 'missing.pth'} does not exist"):
        read_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=f"FID statistics path {tmp_path} is a directory"):
        save_fid_statistics(tmp_path, np.zeros(2), np.eye(2))
    # A checkpoint written over a plain file refuses, and leaves the file as it was.
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    with pytest.raises(ValueError, match=f"checkpoint path {plain} exists and is not a directory"):
        save_checkpoint(plain, weights={"net": {"w": torch.ones(1)}}, state={}, config={})
    assert plain.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["empty.pth", "notes.txt"]
    with pytest.raises(TypeError, match=r"weights\['net'\] must be a state dict of tensors, got 'w' -> int"):
        save_checkpoint(tmp_path / "ck", weights={"net": {"w": 1}}, state={}, config={})


@pytest.mark.parametrize("name", ["DataFileError", "DatasetLayoutError", "UnsafePickleError"])
def test_the_data_errors_are_value_errors(name):
    import ratlip_layers.data as data
    from ratlip_layers.training import CheckpointError

    error = getattr(data, name)
    assert issubclass(error, ValueError) and issubclass(CheckpointError, ValueError)
    with pytest.raises(ValueError, match="data/x.txt"):
        raise error("data/x.txt is unreadable")


def test_run_files_and_options_found_before_any_work(tmp_path):
    """The kinds the last sweep found: each is refused before the work it would spoil starts."""
    from ratlip_layers.data import DataFileError, ShapesDataset
    from ratlip_layers.metrics import CLIPFeatures, FrechetDistance, prepare_real_statistics
    from ratlip_layers.training import CheckpointError, CLIPPretrainConfig, evaluate_checkpoint, load_generator
    from ratlip_layers.training.checkpoint import resolve_checkpoint

    # No checkpoint: the message lists the layouts each loader accepts (resuming takes no save_pretrained).
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path}: .*inside$"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path}: .*or a save_pretrained folder"):
        load_generator(tmp_path)
    # Scoring weights without the model they belong to: refused before the checkpoint is even read.
    with pytest.raises(ValueError, match="score_clip_pretrained='w.pt' needs score_clip_model"):
        evaluate_checkpoint(tmp_path / "no-such-run", score_clip_pretrained="w.pt")
    # One image-caption pair per batch: the contrastive loss would always be 0.
    with pytest.raises(ValueError, match="batch_size must be at least 2 for a contrastive loss, got 1"):
        CLIPPretrainConfig(batch_size=1).validate()

    # A FID cache "directory" that is a file: refused before a single real image is read.
    class Untouchable(ShapesDataset):
        def __getitem__(self, index):
            raise AssertionError("the real images were read before the cache path was checked")

    cache = tmp_path / "cache"
    cache.write_text("keep me")
    clip_model, _ = tiny_clip()
    with pytest.raises(DataFileError, match=f"cache_dir {cache} is a file"):
        prepare_real_statistics(
            FrechetDistance(CLIPFeatures(clip_model)), Untouchable(4, split="test"), cache_dir=cache, dataset_id="x"
        )
    assert cache.read_text() == "keep me"
