"""One SGD training step, as fast as the device allows without changing what it computes.

At the published batch sizes (64-256 CIFAR images) a GPU step is bound by CPU-side kernel launches, not
by arithmetic. The options, all off by default (the papers' fp32 eager step):

- precision 'bf16': forward and loss under bf16 autocast on CUDA (weights, SGD and the loss reductions
  stay fp32; on CPU it also runs, slowly). It changes numerics, so it is part of the run spec; the default stays fp32 until
  benchmarks/validate_bf16.py shows bf16's metrics inside the fp32 seed CI.
- channels_last: NHWC model and batches (tensor-core friendly convolutions).
- compile: torch.compile of the model, once per run, reused for every training step.
- cuda_graph: the whole step (forward, every level's logits included, loss, backward, SGD update, epoch totals)
  captured once as a CUDA graph and replayed per batch: one launch instead of hundreds. Needs CUDA and batches of one
  static shape (the in-memory loader drops its last partial batch); elsewhere the step runs eagerly.
- cudnn_benchmark: cuDNN times its convolution algorithms for each new input shape and keeps the fastest
  (torch.backends.cudnn.benchmark, process-wide; CUDA only). The config turns it on, as the reference does.

The graph-captured step updates with `GraphSafeSGD`, whose learning rates live in device tensors (a
captured graph would otherwise bake in the first epoch's lr) and whose arithmetic is exactly
torch.optim.SGD's, on the optimizer's own momentum buffers, so checkpoints and resume are unchanged.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture, as the CUDA-graph docs require


@dataclass(frozen=True)
class StepOptions:
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False
    cudnn_benchmark: bool = False

    @classmethod
    def from_run(cls, train: dict, speed: dict | None) -> "StepOptions":
        return cls(precision=train["precision"], **(speed or {}))

    def applied(self, device: torch.device, static_batches: bool) -> "StepOptions":
        """What actually runs: a CUDA graph needs CUDA and batches of one static shape, cuDNN autotuning needs CUDA;
        the rest runs anywhere."""
        cuda = device.type == "cuda"
        graph = self.cuda_graph and cuda and static_batches
        return StepOptions(self.precision, self.channels_last, self.compile, graph, self.cudnn_benchmark and cuda)


class GraphSafeSGD:
    """torch.optim.SGD's update (momentum, dampening 0, weight decay, no Nesterov) with device-tensor lrs.

    Works on `optimizer`'s param groups and momentum buffers (created as zeros: SGD's first step sets
    buf = grad, and 0 * m + grad == grad exactly), so `optimizer.state_dict()` stays the checkpoint.
    Call `sync_lr()` after changing group['lr'] (once per epoch).
    """

    def __init__(self, optimizer: torch.optim.SGD):
        for group in optimizer.param_groups:
            if group.get("nesterov") or group.get("dampening", 0) or group.get("maximize"):
                raise ValueError("GraphSafeSGD supports SGD with momentum and weight decay only "
                                 "(no nesterov, dampening or maximize)")
        self.optimizer = optimizer
        self.groups = []
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.requires_grad]
            buffers = [self._momentum_buffer(p) for p in params]
            lr = torch.tensor(float(group["lr"]), device=params[0].device)
            self.groups.append((group, params, buffers, lr))

    def _momentum_buffer(self, param: torch.Tensor) -> torch.Tensor:
        state = self.optimizer.state[param]
        if state.get("momentum_buffer") is None:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state["momentum_buffer"]

    def sync_lr(self) -> None:
        for group, _, _, lr in self.groups:
            lr.fill_(float(group["lr"]))

    @torch.no_grad()
    def step(self) -> None:
        for group, params, buffers, lr in self.groups:
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_add_(buffers, grads)
            torch._foreach_sub_(params, torch._foreach_mul(buffers, lr))


class TrainStep:
    """`step(images, labels)` trains on one batch and adds to the epoch totals; `totals()` reads and resets them.

    `capture` turns a function into a replayable one (CUDA: `cuda_graph_capture`); tests pass a plain
    call to check that warm-up and capture leave the run exactly where an eager step would.
    """

    def __init__(self, model, loss_fn, optimizer, options: StepOptions, device, capture=None):
        self.model, self.loss_fn, self.optimizer, self.options = model, loss_fn, optimizer, options
        self.device = torch.device(device)
        if options.channels_last:
            model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(model) if options.compile else model
        self.capture = capture or (cuda_graph_capture if options.cuda_graph else None)
        self.graph_sgd = GraphSafeSGD(optimizer) if self.capture else None
        self.replay, self.static = None, None
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.seen = 0

    def start_epoch(self) -> None:
        """Call after the epoch's learning rates are set."""
        if self.graph_sgd is not None:
            self.graph_sgd.sync_lr()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.options.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.capture is None:
            self._eager(images, labels)
        else:
            self._replayed(images, labels)
        self.seen += len(labels)

    def totals(self) -> dict:
        if self.seen == 0:
            raise ValueError("the training loader yielded no batch (batch_size larger than the training set "
                             "with drop_last?)")
        out = {"train_loss": float(self.loss_sum) / self.seen, "train_top1": 100.0 * float(self.correct) / self.seen}
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen = 0
        return out

    def _autocast(self):
        if self.options.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward_backward(self, images, labels) -> None:
        with self._autocast():
            output = self.forward(images)  # every level's logits too: compiled and captured with the model
            loss = self.loss_fn(output, labels)
        loss.backward()
        self.loss_sum += loss.detach().float() * len(labels)
        self.correct += (output.logits.detach().argmax(1) == labels).sum()

    def _eager(self, images, labels) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._forward_backward(images, labels)
        self.optimizer.step()

    def _graph_body(self) -> None:
        images, labels = self.static
        self._forward_backward(images, labels)
        self.graph_sgd.step()

    def _replayed(self, images, labels) -> None:
        if self.replay is None:
            self._build_graph(images, labels)
        static_images, static_labels = self.static
        if images.shape != static_images.shape:
            raise ValueError(f"graph-captured training step: batch of shape {tuple(images.shape)}, captured "
                             f"{tuple(static_images.shape)}; cuda_graph needs a loader that drops partial batches")
        static_images.copy_(images)
        static_labels.copy_(labels)
        self.replay()

    def _build_graph(self, images, labels) -> None:
        """Warm up, capture, then put model, momentum, totals and the random-number state back: capturing must
        not train, nor move the random stream (HAFeature's pair shuffle draws torch.rand every step)."""
        self.static = (images.clone(), labels.clone())
        saved = _snapshot(self.model, self.graph_sgd, self.loss_sum, self.correct)
        random_state = _rng_state(self.device)
        self.replay = self.capture(self._graph_body, self._zero_grads)
        _restore(saved)
        _set_rng_state(self.device, random_state)

    def _zero_grads(self) -> None:
        for _, params, _, _ in self.graph_sgd.groups:
            for p in params:
                p.grad = None


def _snapshot(model, graph_sgd: GraphSafeSGD, *tensors) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(tensor, copy) pairs of everything a step mutates: parameters, BN statistics, momentum, totals."""
    live = list(model.state_dict(keep_vars=True).values())
    live += [b for _, _, buffers, _ in graph_sgd.groups for b in buffers] + list(tensors)
    return [(t, t.detach().clone()) for t in live]


@torch.no_grad()
def _restore(saved) -> None:
    for tensor, copy in saved:
        tensor.detach().copy_(copy)


def _rng_state(device: torch.device) -> tuple:
    """torch's CPU generator state and, on CUDA, the device's: what the warm-up steps draw from."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(device: torch.device, state: tuple) -> None:
    """Put the generators back. A captured graph reads the CUDA generator's seed and offset at each replay (and
    advances the offset by what one step draws), so the first replay draws what the first eager step would."""
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def cuda_graph_capture(body, zero_grads):
    """Run `body` GRAPH_WARMUP_STEPS times on a side stream, capture one call as a CUDA graph, return its replay.

    Gradients are set to None before capture so that backward allocates them inside the graph's
    memory pool; every replay then overwrites (not accumulates) the same gradient tensors.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(GRAPH_WARMUP_STEPS):
            zero_grads()
            body()
    torch.cuda.current_stream().wait_stream(side)
    zero_grads()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay
