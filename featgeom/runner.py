"""One training run end to end: data, frame, model, loss, fit, test, outputs.

Called by workflow/scripts/train.py; everything a run writes goes to its own folder
results/{dataset}/{experiment}/{method}/seed{seed}/.
"""
from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path

import numpy as np
import torch

from featgeom import collapse, frames
from featgeom.checkpoint import final_state, load_best_checkpoint, save_checkpoint
from featgeom.config import MAIN_PROCESS_CORES, wanted_workers
from featgeom.curves import open_curves
from featgeom.data.gpu_loader import InMemoryLoader
from featgeom.data.loaders import build_loaders, loader_workers
from featgeom.hierarchy import read_distance_csv
from featgeom.hierarchy_stage import level_table_of
from featgeom.io import read_json, write_json, write_npz
from featgeom.lineage import made_of
from featgeom.losses import build_loss
from featgeom.models import build_model, param_groups
from featgeom.models.backbones import build_backbone
from featgeom.provenance import write_provenance
from featgeom.run_guard import clear_forced, forced_since
from featgeom.step import StepOptions
from featgeom.train import fit, predict, seed_everything


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"config asks for device {name!r} but CUDA is not available on this node")
    return torch.device(name)


def run_training(spec: dict, seed: int, inputs: dict, outputs: dict, threads: int = 1, log=None,
                 speed: dict | None = None, keep_resume_point: bool = False, logger: str = "none") -> None:
    """inputs: data (arrays .npz or image-folder manifest), distances, levels, s_min (HAFrame runs).
    outputs: run_dir, test_logits, checkpoint, history, collapse, provenance.
    speed, logger: the execution speed options and the curve writer (featgeom.config.resolve_execution,
    featgeom.curves); they do not change results.
    keep_resume_point: keep the final checkpoint (runs trained in packs: a rerun of the pack then only
    re-evaluates this run instead of training it again, when featgeom.lineage.made_of is unchanged)."""
    set_main_threads(spec, threads, log)
    device = resolve_device(spec["device"])
    seed_everything(seed)
    levels = read_json(inputs["levels"])
    _, distances = read_distance_csv(inputs["distances"])
    loaders, num_classes = build_loaders(spec, inputs["data"], levels, seed, device, threads, inputs.get("resized"))
    s_min = read_json(inputs["s_min"])["s_min"] if "s_min" in inputs else None
    frame, similarity = build_frame(spec, distances, num_classes, seed, s_min)
    table = per_level_table(spec, levels, inputs["levels"])
    model = build_model(spec["model"], num_classes, frame, level_table=table).to(device)
    loss_fn = build_loss(spec["loss"], frame=frame, similarity=similarity, scale=spec["model"].get("scale"),
                         level_table=table).to(device)
    optimizer = torch.optim.SGD(param_groups(model, spec["train"]["lr"]), momentum=spec["train"]["momentum"],
                                weight_decay=spec["train"]["weight_decay"])
    run_dir = Path(outputs["run_dir"])
    resume_point = run_dir / "last_checkpoint.pt"
    lineage = made_of(spec, seed, inputs, None if frame is None else np.ascontiguousarray(frame).tobytes())
    measure = partial(measure_collapse, loader=loaders["train_eval"], similarity=similarity,
                      fixed_frame=frame is not None)
    # In-memory batches all have one shape (the last partial batch is dropped): the step can be graph-captured.
    static_batches = isinstance(loaders["train"], InMemoryLoader)
    options = StepOptions.from_run(spec["train"], speed).applied(device, static_batches)
    torch.backends.cudnn.benchmark = options.cudnn_benchmark  # process-wide: a pack's next run sets its own
    curves = open_curves(logger, run_dir)
    try:
        state = fit(model, loss_fn, optimizer, loaders, fit_settings(spec["train"], seed), resume_point, lineage,
                    measure_collapse=measure, log=log, options=options, reuse_final=reuses_final(run_dir, resume_point),
                    curves=curves)
    finally:
        if curves is not None:
            curves.close()
    model.load_state_dict(state.best_model)
    write_run_outputs(model, loaders, state, spec, outputs, frame, str(device), lineage, spec["train"]["epochs"])
    write_provenance(outputs["provenance"], {**spec, "seed": seed}, device=str(device),
                     extra={"applied": {"transforms": loaders["transforms"], "haframe_s_min": s_min,
                                        "step": dataclasses.asdict(options)},
                            "made_of": lineage, "inputs": {k: str(v) for k, v in sorted(inputs.items())},
                            "pilot": spec["pilot"]})
    # Only now is every output written: a kill before this line reruns from the final epoch's
    # checkpoint (no epoch is retrained); after it the resume point would only go stale.
    clear_forced(run_dir)
    if keep_resume_point:
        keep_as_resume_point(Path(outputs["checkpoint"]), resume_point)
    else:
        resume_point.unlink()


def set_main_threads(spec: dict, threads: int, log=None) -> None:
    """torch threads of the training process: the job's cores less those its loader workers use (image folders,
    featgeom.data.loaders.loader_workers); says so in the log where the job got fewer cores than it booked."""
    workers = loader_workers(spec, threads)
    torch.set_num_threads(max(1, threads - workers))
    wanted = wanted_workers(spec)
    if workers < wanted and log is not None:
        print(f"loader: {workers} of the {wanted} workers of train.num_workers: this job got {threads} cores, "
              f"not the {wanted + MAIN_PROCESS_CORES} it booked (Snakemake's --cores, or a smaller SLURM allocation)",
              file=log, flush=True)


def keep_as_resume_point(best_checkpoint: Path, resume_point: Path) -> None:
    """Make the kept final resume point the best-model checkpoint itself, a second name (hard link) of one file:
    it holds the final FitState too (write_run_outputs), so a pack rerun resumes from it after Snakemake deleted
    `checkpoint_best.pt`, and a run's folder holds one copy of its model, not two. Every write replaces a file by
    a rename (featgeom.io.atomic_path), never in place, so neither name ever changes the other's content. Where
    the file system has no hard links, the separate final checkpoint fit wrote stays."""
    link = resume_point.with_name(f".{resume_point.name}.link")
    link.unlink(missing_ok=True)
    try:
        os.link(best_checkpoint, link)
    except OSError:
        return
    os.replace(link, resume_point)


def reuses_final(run_dir: Path, resume_point: Path) -> bool:
    """A final checkpoint is reused unless Snakemake forced the run after it was written (featgeom.run_guard);
    one written since, by the forced retraining itself, is reused after a kill."""
    forced = forced_since(run_dir)
    return forced is None or not resume_point.exists() or resume_point.stat().st_mtime_ns > forced


def fit_settings(train: dict, seed: int) -> dict:
    """Collapse curves (every `collapse_every` epochs) only for `collapse_seeds`, as published;
    every seed still gets its final collapse metrics."""
    curves = seed in train["collapse_seeds"]
    return {**train, "collapse_every": train["collapse_every"] if curves else 0}


def per_level_table(spec: dict, levels: dict, source) -> np.ndarray | None:
    """The [L, K] level x class table for models with one classifier per level (Flamingo, HAFeature)."""
    return level_table_of(levels, str(source)) if spec["model"].get("level_heads") else None


def build_frame(spec: dict, distances: np.ndarray, num_classes: int, seed: int, s_min: float | None = None):
    """The fixed classifier of the run, if any: (frame, similarity) as numpy arrays.

    s_min comes precomputed from the `haframe_s_min` rule; None searches it here (library use).
    """
    kind = spec["model"].get("frame")
    if kind == "haframe":
        gamma = spec["frame"]["gamma"]
        s_min = frames.find_s_min(distances, gamma) if s_min is None else s_min
        similarity = frames.haframe_similarity(distances, gamma, s_min)
        return frames.haframe_weights(similarity, num_classes, seed), similarity
    if kind == "etf":
        return frames.simplex_etf(num_classes, etf_dimension(spec["model"]), seed), None
    return None, None


def etf_dimension(model_spec: dict) -> int:
    """Feature dimension the ETF must live in: the projection, else the backbone's channels."""
    if model_spec.get("projection_dim"):
        return int(model_spec["projection_dim"])
    kwargs = {k: v for k, v in model_spec.get("backbone_kwargs", {}).items()
              if k not in ("pretrained", "weights_path")}  # only the shape matters here
    return build_backbone(model_spec["backbone"], **kwargs).out_channels


def measure_collapse(model, loader, similarity, fixed_frame=False) -> dict:
    """Neural-collapse metrics on the train split (eval mode, no augmentation); fixed_frame: the classifier is a
    fixed HAFrame or ETF (NC3 on raw means).

    Features go in as float32 (what `predict` returns): collapse_report converts them to float64 a chunk at a time,
    so the values are the same as from a float64 copy, without its N×d×8 bytes (1.5 GB at iNat19 size).
    """
    logits, features, labels = predict(model, loader)
    weight, bias = _classifier_arrays(model)
    return collapse.collapse_report(np.asarray(features, dtype=np.float32), labels, weight, logits.argmax(1),
                                    bias=bias, S=similarity, fixed_frame=fixed_frame)


def _classifier_arrays(model):
    weight, bias = model.head.classifier_weight()
    weight = weight.detach().float().cpu().numpy().astype(np.float64)
    return weight, None if bias is None else bias.detach().float().cpu().numpy().astype(np.float64)


COLLAPSE_CONVENTIONS = (
    "train split, eval mode, no augmentation; global mean = sample mean; NC1 = tr(Sw pinv(Sb))/K; "
    "NC2 on class means centred by the global mean; NC3 = ||W/||W||_F - M/||M||_F||_F^2 (squared), "
    "nc3_self_duality with M = centred class means (learnable classifiers, Papyan), nc3_self_duality_raw with "
    "M = raw class means (fixed HAFrame / ETF classifiers, HAFrame's plot); "
    "NC4 = share of samples whose nearest (uncentred) class mean disagrees with the network; "
    "angular collapse = mean over i<j of |cos(mu_i, mu_j) - S_ij| and std over i<j of the signed cos(mu_i, mu_j) "
    "- S_ij, on raw class means (HAFrame's plot); "
    "cone angles in degrees between each feature and its class mean")


def write_run_outputs(model, loaders, state, spec, outputs, frame, device, lineage: dict, epochs: int) -> None:
    """The run's outputs; `model` holds the best weights. The best-model checkpoint is also a final resume point
    (final_state): `model` and `best_model` are the same tensors, which torch.save stores once."""
    logits, _, labels = predict(model, loaders["test"])
    write_npz(outputs["test_logits"], scores=logits.astype(np.float32), labels=labels.astype(np.int64))
    save_checkpoint(outputs["checkpoint"], {**final_state(state, lineage, epochs), "model": state.best_model,
                                            "spec": spec, "frame": frame, "best_val_top1": state.best_val})
    write_json(outputs["history"], {"epochs": state.history, "best_epoch": state.best_epoch,
                                    "best_val_top1": state.best_val, "device": device})
    write_json(outputs["collapse"], {"final": state.collapse_history[-1] if state.collapse_history else {},
                                     "history": state.collapse_history, "conventions": COLLAPSE_CONVENTIONS})


def dump_features(spec: dict, seed: int, inputs: dict, features_path, threads: int = 1) -> None:
    """features.npz of the best checkpoint: train/test penultimate features, fine and coarse labels,
    and the classifier rows (+ bias) for Mueller projections."""
    checkpoint = load_best_checkpoint(inputs["checkpoint"])  # first: a bad checkpoint is named before any work
    set_main_threads(spec, threads)
    device = resolve_device(spec["device"])
    levels = read_json(inputs["levels"])
    loaders, num_classes = build_loaders(spec, inputs["data"], levels, seed, device, threads, inputs.get("resized"))
    model = build_model(spec["model"], num_classes, checkpoint["frame"],
                        level_table=per_level_table(spec, levels, inputs["levels"]))
    model.load_state_dict(checkpoint["model"])
    model.to(device)
    _, train_features, _ = predict(model, loaders["train_eval"])
    _, test_features, _ = predict(model, loaders["test"])
    weight, bias = _classifier_arrays(model)
    write_npz(features_path, train_features=train_features, test_features=test_features, **loaders["label_sets"],
              classifier_weight=weight, classifier_bias=np.zeros(0) if bias is None else bias)
