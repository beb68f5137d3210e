"""The training step's options: the graph-safe SGD is torch's SGD, capturing does not train, bf16 and
channels_last run and stay close to fp32, and what a run applied is recorded."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from featgeom.losses import CrossEntropyLoss, build_loss
from featgeom.models import build_model, param_groups
from featgeom.step import GRAPH_WARMUP_STEPS, GraphSafeSGD, StepOptions, TrainStep

MODEL = {"backbone": "convnet_small", "backbone_kwargs": {"width": 8}, "head": "type2"}
LRS = {"backbone": 0.05, "head": 0.1, "classifier": 0.2}


def model_and_sgd(seed=0):
    torch.manual_seed(seed)
    model = build_model(MODEL, num_classes=6)
    return model, torch.optim.SGD(param_groups(model, LRS), momentum=0.9, weight_decay=5e-4)


def batches(n, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 6, (8,), generator=gen)) for _ in range(n)]


def train(step, data, lr_factors):
    """Two 'epochs' with different learning rates, as fit does: set lr, start_epoch, steps, totals."""
    totals = []
    for factor in lr_factors:
        for group in step.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        step.model.train()
        step.start_epoch()
        for images, labels in data:
            step(images, labels)
        totals.append(step.totals())
    return totals


def replay_without_warmup(body, zero_grads):
    def replay():
        zero_grads()
        body()
    return replay


def replay_on_cpu(body, zero_grads):
    """What cuda_graph_capture does, minus the GPU: warm-up calls that really train, then a replay that
    recomputes the gradients from scratch each call (a captured backward overwrites its gradients)."""
    for _ in range(GRAPH_WARMUP_STEPS):
        zero_grads()
        body()
    return replay_without_warmup(body, zero_grads)


def one_update_bound(param, lr, buffer):
    """How far two float32 computations of p - lr * buf may differ: torch rounds once (p + (-lr) * buf), the
    graph-safe SGD rounds the product, then the difference. Each rounding is within eps / 2 of its result, so the two
    differ by at most eps * (|lr * buf| + |p - lr * buf|), plus the smallest normal for results near zero."""
    f32 = torch.finfo(torch.float32)
    return f32.eps * ((lr * buffer).abs() + (param - lr * buffer).abs()) + f32.tiny


def test_graph_safe_sgd_is_torch_sgd():
    """One update on fixed gradients, three times with two learning rates: the same momentum buffers bit for bit,
    the same weights within one update's float32 rounding (derived above, not a tuned constant). Each update starts
    both optimizers from the same weights and buffers, so rounding never compounds (a comparison across backward
    passes amplified it through batch norm and failed on 2-core machines)."""
    model_a, sgd_a = model_and_sgd()
    model_b = copy.deepcopy(model_a)
    sgd_b = torch.optim.SGD(param_groups(model_b, LRS), momentum=0.9, weight_decay=5e-4)
    graph_sgd = GraphSafeSGD(sgd_b)
    params_a, params_b = list(model_a.parameters()), list(model_b.parameters())
    gen = torch.Generator().manual_seed(2)
    for i in range(3):
        for sgd in (sgd_a, sgd_b):
            for group in sgd.param_groups:
                group["lr"] = group["base_lr"] * (1.0 if i == 0 else 0.3)
        graph_sgd.sync_lr()
        lr_of = {p: group["lr"] for group in sgd_a.param_groups for p in group["params"]}
        with torch.no_grad():  # the same state before this update (in place: graph_sgd holds these tensors)
            for a, b in zip(params_a, params_b):
                b.copy_(a)
                a.grad = torch.randn(a.shape, generator=gen)
                b.grad = a.grad.clone()
                if a in sgd_a.state:
                    sgd_b.state[b]["momentum_buffer"].copy_(sgd_a.state[a]["momentum_buffer"])
        before = [a.detach().clone() for a in params_a]
        sgd_a.step()
        graph_sgd.step()
        for (name, a), b, p in zip(model_a.named_parameters(), params_b, before):
            buffer = sgd_a.state[a]["momentum_buffer"]
            assert torch.equal(buffer, sgd_b.state[b]["momentum_buffer"]), f"step {i}, {name}: momentum buffer"
            excess = (a - b).abs() - one_update_bound(p, lr_of[a], buffer)
            assert excess.max() <= 0, f"step {i}, {name}: weights differ by more than one update's rounding"
    # its momentum buffers are the optimizer's: a checkpoint taken from sgd_b resumes an eager run
    assert len(sgd_b.state_dict()["state"]) == len(sgd_a.state_dict()["state"]) > 0


def test_graph_safe_sgd_refuses_what_it_does_not_implement():
    model, _ = model_and_sgd()
    with pytest.raises(ValueError, match="nesterov"):
        GraphSafeSGD(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True))


def test_capturing_does_not_train():
    """Warm-up before capture runs real steps; they must be undone, or the captured run trains 3 extra steps."""
    data = batches(5)
    eager_model, eager_sgd = model_and_sgd()
    eager = TrainStep(eager_model, CrossEntropyLoss(), eager_sgd, StepOptions(cuda_graph=True), "cpu",
                      capture=replay_without_warmup)
    captured_model, captured_sgd = model_and_sgd()
    captured = TrainStep(captured_model, CrossEntropyLoss(), captured_sgd, StepOptions(cuda_graph=True), "cpu",
                         capture=replay_on_cpu)
    assert train(eager, data, [1.0, 0.5]) == train(captured, data, [1.0, 0.5])
    for (name, a), b in zip(eager_model.state_dict().items(), captured_model.state_dict().values()):
        assert torch.equal(a, b), name


class RandomlyWeightedCE(torch.nn.Module):
    """CE plus a term weighted by torch.rand draws, as HAFeature's pair shuffle draws every step: what the run
    trains depends on the random stream."""

    def forward(self, output, labels):
        return CrossEntropyLoss()(output, labels) + (output.logits * torch.rand_like(output.logits)).mean()


def test_capturing_leaves_the_random_stream_where_an_eager_step_would():
    """The warm-up before capture draws from the generator; restored with the rest of the snapshot, the run
    draws the same numbers as an eager one (seen: without it the trained weights differ)."""
    data, results = batches(5), []
    for capture in (replay_without_warmup, replay_on_cpu):
        model, sgd = model_and_sgd()
        step = TrainStep(model, RandomlyWeightedCE(), sgd, StepOptions(cuda_graph=True), "cpu", capture=capture)
        torch.manual_seed(7)
        totals = train(step, data, [1.0, 0.5])
        results.append((totals, torch.rand(4), model.state_dict()))
    (eager_totals, eager_next, eager_state), (captured_totals, captured_next, captured_state) = results
    assert eager_totals == captured_totals and torch.equal(eager_next, captured_next)
    for name, weights in eager_state.items():
        assert torch.equal(weights, captured_state[name]), name


@pytest.mark.parametrize("level_heads", ["flamingo", "hafeature"])
def test_captured_per_level_step_trains_as_the_eager_one(level_heads):
    """The per-level logits come from the model's forward (what torch.compile wraps and a CUDA graph captures); the
    loss sees only the output. HAFeature also draws its pair shuffle every step."""
    table = [[0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]]
    data, results = batches(4), []
    for capture in (replay_without_warmup, replay_on_cpu):
        torch.manual_seed(0)
        model = build_model({**MODEL, "level_heads": level_heads}, num_classes=6, level_table=table)
        sgd = torch.optim.SGD(param_groups(model, LRS), momentum=0.9, weight_decay=5e-4)
        options = {"dissimilar_from": 1} if level_heads == "hafeature" else {}
        loss_fn = build_loss({"name": level_heads, **options}, level_table=table)
        step = TrainStep(model, loss_fn, sgd, StepOptions(cuda_graph=True), "cpu", capture=capture)
        torch.manual_seed(7)
        results.append((train(step, data, [1.0, 0.5]), model.state_dict()))
    (eager_totals, eager_state), (captured_totals, captured_state) = results
    assert eager_totals == captured_totals
    for name, weights in eager_state.items():
        assert torch.equal(weights, captured_state[name]), name


def test_compiled_per_level_model_returns_every_level_and_trains_the_level_weights():
    """torch.compile traces the whole ModelOutput, per-level logits and the classifier weights HAFeature's
    geometric term reads (aot_eager: dynamo and AOT autograd as the step's compile uses them, without a C++ build)."""
    table = [[0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]]
    loss_fn = build_loss({"name": "hafeature", "dissimilar_from": 1}, level_table=table)
    grads = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model({**MODEL, "level_heads": "hafeature"}, num_classes=6, level_table=table)
        forward = torch.compile(model, backend="aot_eager") if compiled else model
        images, labels = batches(1)[0]
        torch.manual_seed(7)
        loss_fn(forward(images), labels).backward()
        grads.append([p.grad for p in model.head.classifier.parameters()])
    for eager, traced in zip(*grads):
        assert torch.allclose(eager, traced, atol=1e-6)


def test_captured_step_refuses_a_batch_of_another_shape():
    model, sgd = model_and_sgd()
    step = TrainStep(model, CrossEntropyLoss(), sgd, StepOptions(cuda_graph=True), "cpu", capture=replay_on_cpu)
    images, labels = batches(1)[0]
    step.start_epoch()
    step(images, labels)
    with pytest.raises(ValueError, match="batch of shape \\(3, 3, 16, 16\\), captured \\(8, 3, 16, 16\\)"):
        step(images[:3], labels[:3])


@pytest.mark.parametrize("options", [StepOptions(precision="bf16"), StepOptions(channels_last=True)])
def test_bf16_and_channels_last_train_close_to_fp32(options):
    data = batches(1)  # the first batch's loss is computed before any update: only the step's numerics differ
    reference_model, reference_sgd = model_and_sgd()
    reference = train(TrainStep(reference_model, CrossEntropyLoss(), reference_sgd, StepOptions(), "cpu"), data, [1.0])
    model, sgd = model_and_sgd()
    result = train(TrainStep(model, CrossEntropyLoss(), sgd, options, "cpu"), data, [1.0])
    tolerance = 0.02 if options.precision == "bf16" else 1e-5
    assert result[0]["train_loss"] == pytest.approx(reference[0]["train_loss"], rel=tolerance)
    if options.channels_last:
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_graphs_apply_only_on_cuda_with_static_batches():
    wanted = StepOptions(precision="bf16", channels_last=True, cuda_graph=True)
    assert wanted.applied(torch.device("cpu"), static_batches=True) == StepOptions("bf16", True, False, False)
    assert wanted.applied(torch.device("cuda"), static_batches=False).cuda_graph is False
    assert wanted.applied(torch.device("cuda"), static_batches=True).cuda_graph is True
    assert StepOptions.from_run({"precision": "bf16"}, {"compile": True}) == StepOptions("bf16", False, True, False)


@pytest.mark.slow
def test_gpu_benchmark_runs_small_on_cpu():
    """benchmarks/bench_train_gpu.py in its CPU-sized setting: every requested row measured, sharing included."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_gpu.py"
    done = subprocess.run([sys.executable, str(script), "--small", "--options", "fp32,channels_last,cuda_graph",
                           "--share", "1,2", "--steps", "2", "--warmup", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("convnet_small")]
    options = {row[2]: float(row[3]) for row in rows if len(row) == 7}
    assert set(options) == {"fp32", "channels_last", "cuda_graph"} and min(options.values()) > 0, done.stdout
    shared = {int(row[2]): float(row[3]) for row in rows if len(row) == 6}
    assert set(shared) == {1, 2} and min(shared.values()) > 0, done.stdout
    cuda_graph_row = next(row for row in rows if len(row) == 7 and row[2] == "cuda_graph")
    assert cuda_graph_row[-1] == "fp32", "on CPU the graph option does not apply, and the table must say so"


@pytest.mark.slow
def test_gpu_benchmark_resnet50_image_folder_runs_small_on_cpu():
    """Table 3 of benchmarks/bench_train_gpu.py (ResNet-50 fed by the image-folder loader), CPU-sized: both rows."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_gpu.py"
    done = subprocess.run([sys.executable, str(script), "--small", "--resnet50", "--options", "", "--share", "",
                           "--steps", "1", "--warmup", "1", "--loader-workers", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()
            if line.startswith(("fp32 ", "bf16+channels_last "))}
    assert set(rows) == {"fp32", "bf16+channels_last"}, done.stdout
    assert all(float(row[1]) > 0 and float(row[2]) > 0 for row in rows.values()), done.stdout


def load_validate_bf16():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_bf16.py"
    spec = importlib.util.spec_from_file_location("validate_bf16", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bf16_check_compares_each_mean_with_the_fp32_interval():
    import pandas as pd
    module = load_validate_bf16()
    summary = pd.DataFrame([
        ("main", "II", "haframe", "top1", 70.0, 0.5, 5), ("main_bf16", "II", "haframe", "top1", 70.4, 0.9, 5),
        ("main", "II", "haframe", "mistake_severity", 2.0, 0.01, 5),
        ("main_bf16", "II", "haframe", "mistake_severity", 2.05, 0.01, 5),
    ], columns=["experiment", "model_type", "method", "metric", "mean", "ci95", "n_seeds"])
    result = module.bf16_inside_fp32_ci(summary, "main").set_index("metric")
    assert bool(result.loc["top1", "inside"]) and not bool(result.loc["mistake_severity", "inside"])


def test_bf16_check_config_holds_the_experiment_twice():
    import yaml
    module = load_validate_bf16()
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "demo.yaml").read_text())
    reduced = module.bf16_config(config, "synthetic", "main")
    experiments = reduced["datasets"]["synthetic"]["experiments"]
    assert list(reduced["datasets"]) == ["synthetic"] and list(experiments) == ["main", "main_bf16"]
    assert experiments["main_bf16"]["train"]["precision"] == "bf16" and "precision" not in experiments["main"]["train"]
    assert experiments["main_bf16"]["methods"] == experiments["main"]["methods"]
