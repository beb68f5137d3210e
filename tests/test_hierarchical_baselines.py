"""Flamingo and HAFeature: level tables, per-level heads, losses against hand-computed values, a short run."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from featgeom.config import ConfigError, check_config
from featgeom.data.arrays import save_arrays
from featgeom.data.synthetic import make_synthetic
from featgeom.hierarchical_losses import (
    children_sum, dissimilar_pair_counts, geometric_consistency, jensen_shannon, margin_dissimilarity,
)
from featgeom.hierarchy import Hierarchy, HierarchyError, level_labels, level_table, load_paths_csv, write_distance_csv, write_paths_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs
from featgeom.io import read_json, write_json
from featgeom.losses import build_loss
from featgeom.models import build_model, param_groups
from featgeom.models.heads import (
    FlamingoClassifiers, HAFeatureClassifiers, ModelOutput, PerLevelHead, flamingo_chunk_starts,
)
from featgeom.runner import dump_features, run_training

REPO = Path(__file__).resolve().parent.parent
# 2 top nodes -> 3 middle nodes -> 6 leaves; leaf 5 sits at depth 2 and stands for itself at level 3
TABLE = np.array([[0, 0, 0, 0, 1, 1],
                  [0, 0, 1, 1, 2, 3],
                  [0, 1, 2, 3, 4, 5]])


class IdentityTrunk(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.feature_dim = dim

    def forward(self, h):
        return h


def per_level_head(classifiers, dim, sizes):
    """A per-level head on features given directly (an identity trunk)."""
    return PerLevelHead(IdentityTrunk(dim), classifiers(dim, sizes))


# ---- level tables ---------------------------------------------------------------------------------
def test_level_table_of_a_ragged_tree_repeats_shallow_leaves():
    tree = Hierarchy([("a", "x", "l0"), ("a", "x", "l1"), ("a", "y", "l2"), ("b", "l3")])
    table = level_table([labels for _, labels in level_labels(tree, tree.leaves)])
    assert table.tolist() == [[0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3]]


@pytest.mark.parametrize("name, sizes", [
    ("fgvc_aircraft", [30, 70, 100]), ("cifar100", [2, 4, 8, 20, 100]),
    ("inaturalist19", [3, 4, 9, 34, 57, 72, 1010]),
    ("tiered_imagenet", [2, 5, 21, 35, 86, 159, 270, 422, 510, 584, 607, 608]),
])
def test_bundled_hierarchies_give_the_official_level_sizes(name, sizes):
    """HAFrame `init.py` hard-codes these sizes (finest first); we derive them from the tree."""
    tree = load_paths_csv(REPO / f"featgeom/resources/hierarchies/{name}_paths.csv")
    table = level_table([labels for _, labels in level_labels(tree, tree.leaves)])
    assert [int(row.max()) + 1 for row in table] == sizes


@pytest.mark.parametrize("rows, match", [
    ([[0, 1, 2]], "1 level"),
    ([[0, 0, 1], [0, 1]], "level 1 labels 3 classes, the leaf level 2"),
    ([[0, 0, 2], [0, 1, 2]], "level 1 labels are not 0..n-1"),
    ([[0, 1, 1], [0, 0, 1], [0, 1, 2]], "node.*'0' of level 2 sit under two different nodes of level 1"),
    ([[0, 0, 1], [1, 0, 2]], "last level must label every class"),
])
def test_level_table_rejects_levels_that_are_not_a_tree(rows, match):
    with pytest.raises(HierarchyError, match=match):
        level_table(rows, source="levels.json")


# ---- heads ------------------------------------------------------------------------------------------
def test_flamingo_chunks_follow_the_official_splits():
    assert flamingo_chunk_starts(512, 5, spread_remainder=True) == [0, 102, 204, 306, 409]  # WRN type-I, by hand
    assert flamingo_chunk_starts(600, 7, spread_remainder=False) == [0, 85, 170, 255, 340, 425, 510]
    assert flamingo_chunk_starts(608, 12, spread_remainder=False)[-1] == 550  # leaf chunk 58 = 50 + remainder 8
    with pytest.raises(ValueError, match="feature dim 2 < 3 levels"):
        flamingo_chunk_starts(2, 3, spread_remainder=False)


def test_flamingo_level_heads_train_only_their_own_chunk():
    torch.manual_seed(0)
    head = per_level_head(FlamingoClassifiers, 9, [2, 4, 6])  # chunks [0:3], [3:6], [6:9]
    h = torch.randn(5, 9, requires_grad=True)
    for level, own in enumerate([(0, 3), (3, 6), (6, 9)]):
        h.grad = None
        head(h).level_logits[level].square().sum().backward()
        touched = (h.grad.abs().sum(0) > 0).nonzero().flatten().tolist()
        assert touched == list(range(*own)), f"level {level} sent gradient to features {touched}"
    assert [layer.in_features for layer in head.classifier] == [9, 6, 3]  # the top head sees every feature


def test_flamingo_loss_is_the_sum_of_per_level_cross_entropies():
    torch.manual_seed(1)
    head = per_level_head(FlamingoClassifiers, 6, [2, 4, 6])
    loss_fn = build_loss({"name": "flamingo"}, level_table=TABLE)
    h, labels = torch.randn(4, 6), torch.tensor([0, 3, 4, 5])
    output = head(h)
    assert output.level_logits[-1] is output.logits
    expected = 0.0
    for level in range(3):
        z = head.classifier.logits_at(level, h).detach().numpy().astype(np.float64)
        y = TABLE[level][labels.numpy()]
        log_p = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
        expected += -log_p[np.arange(4), y].mean()
    assert loss_fn(output, labels).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("classifiers", [FlamingoClassifiers, HAFeatureClassifiers])
def test_classifier_weight_maps_features_to_the_leaf_logits(classifiers):
    torch.manual_seed(2)
    head = per_level_head(classifiers, 6, [2, 4, 6])
    h = torch.randn(3, 6)
    weight, bias = head.classifier_weight()
    assert torch.allclose(h @ weight.T + bias, head(h)[0], atol=1e-6)


def test_hafeature_logits_use_unit_weight_rows_plus_bias():
    head = per_level_head(HAFeatureClassifiers, 2, [1, 2])
    with torch.no_grad():
        head.classifier[1].weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
        head.classifier[1].bias.copy_(torch.tensor([0.5, -1.0]))
    logits = head(torch.tensor([[1.0, 1.0]])).logits
    assert logits.detach().flatten().tolist() == pytest.approx([0.6 + 0.8 + 0.5, 1.0 - 1.0])


def test_per_level_classifiers_train_at_the_classifier_lr_and_type2_conv_at_the_backbone_lr():
    spec = {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": "type2", "level_heads": "hafeature"}
    model = build_model(spec, num_classes=6, level_table=TABLE)
    groups = {g["name"]: {id(p) for p in g["params"]} for g in param_groups(model, {"backbone": 1, "head": 2,
                                                                                    "classifier": 3})}
    assert {id(p) for p in model.head.classifier.parameters()} == groups["classifier"]
    assert id(model.head.trunk.channel_reduce.weight) in groups["backbone"]
    assert id(model.head.trunk.feature_bn.weight) in groups["head"]


def test_level_heads_refuse_a_frame_and_need_the_level_table():
    spec = {"backbone": "convnet_small", "head": "type2", "level_heads": "flamingo"}
    with pytest.raises(ValueError, match="level_heads 'flamingo' has a learnable classifier"):
        build_model(spec, num_classes=6, frame=np.eye(6), level_table=TABLE)
    with pytest.raises(ValueError, match="need the level x class table"):
        build_model(spec, num_classes=6)
    with pytest.raises(ValueError, match=r"expected shape \(levels, 5\)"):
        build_model(spec, num_classes=5, level_table=TABLE)


# ---- HAFeature terms, by hand ---------------------------------------------------------------------
def test_jensen_shannon_matches_the_formula_in_nats():
    p, q = torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([[0.0, 0.5, 0.5]])
    # M = (0.25, 0.5, 0.25): KL(p||M) = 0.5 ln 2 + 0.5 ln 1 = KL(q||M)
    assert float(jensen_shannon(p, q)) == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert float(jensen_shannon(p, p)) == pytest.approx(0.0, abs=1e-7)


def test_soft_labels_sum_the_finer_softmax_over_each_parents_children():
    fine = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    onehot = F.one_hot(torch.tensor([0, 0, 1, 1]), 2).float()
    assert children_sum(fine, onehot).flatten().tolist() == pytest.approx([0.3, 0.7])


def test_geometric_consistency_is_the_mean_cosine_to_the_normalised_children_sum():
    parents = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    children = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    onehot = F.one_hot(torch.tensor([0, 0, 1]), 2).float()
    # parent 0: children sum (1, 1)/sqrt2 -> cos 1/sqrt2; parent 1: (0, 1) -> cos 1
    assert float(geometric_consistency(parents, children, onehot)) == pytest.approx((1 / math.sqrt(2) + 1) / 2)


def official_pair_table(labels, probs, limit):
    """`create_dissimilar_pairs` without its shuffle (our `order` argument does that)."""
    table, count = torch.zeros(limit, 2, probs.shape[1]), 0
    for _ in range(len(labels)):
        for j in range(len(labels) - 1):
            if count >= limit:
                break
            if labels[j] != labels[j + 1]:
                table[count, 0], table[count, 1] = probs[j], probs[j + 1]
                count += 1
    return table


def official_dissimilar_loss(p, q, margin):
    """`JSDDissimilarLoss.forward` (util/loss_function/jsd.py)."""
    mix = torch.clamp(0.5 * (p + q), 1e-7, 1).log()
    kl_p = F.kl_div(mix, p, reduction="none").sum(1)
    kl_q = F.kl_div(mix, q, reduction="none").sum(1)
    return 0.5 * (torch.clamp(margin - kl_p, min=0).mean() + torch.clamp(margin - kl_q, min=0).mean())


def test_pair_counts_for_a_hand_example():
    # pairs (1,2) and (3,4) differ: ranks 0, 1; passes k with 2k + r < 5 -> 3 and 2
    assert dissimilar_pair_counts(torch.tensor([0, 0, 1, 1, 2]), limit=5).tolist() == [0, 3, 0, 2]


@pytest.mark.parametrize("batch, classes, limit", [(6, 2, 256), (64, 5, 256), (9, 3, 7), (5, 1, 4), (1, 3, 256)])
def test_margin_dissimilarity_equals_the_official_pair_table(batch, classes, limit):
    generator = torch.Generator().manual_seed(batch)
    labels = torch.randint(classes, (batch,), generator=generator)
    probs = torch.softmax(torch.randn(batch, 4, generator=generator), dim=1)
    order = torch.randperm(batch, generator=generator)
    table = official_pair_table(labels[order], probs[order], limit)
    expected = official_dissimilar_loss(table[:, 0], table[:, 1], 3.0)
    assert float(margin_dissimilarity(probs, labels, order, 3.0, limit)) == pytest.approx(float(expected), rel=1e-6)


def hafeature_loss(dissimilar_from=1):
    torch.manual_seed(3)
    head = per_level_head(HAFeatureClassifiers, 5, [2, 4, 6])
    return head, build_loss({"name": "hafeature", "dissimilar_from": dissimilar_from}, level_table=TABLE)


def test_hafeature_loss_is_ce_plus_jsd_minus_geometry_plus_margin_terms():
    head, loss_fn = hafeature_loss(dissimilar_from=2)
    h, labels = torch.randn(7, 5), torch.tensor([0, 1, 2, 3, 4, 5, 5])
    output = head(h)
    logits = output.logits
    torch.manual_seed(11)
    total = loss_fn(output, labels)

    probs = [torch.softmax(head.classifier.logits_at(level, h), 1) for level in range(3)]
    weights = [F.normalize(layer.weight, dim=1) for layer in head.classifier]
    parents = [F.one_hot(torch.tensor(p), n).float() for p, n in (([0, 0, 1, 1], 2), ([0, 0, 1, 1, 2, 3], 4))]
    expected = F.cross_entropy(logits, labels)
    for level in range(2):
        expected = expected + jensen_shannon(children_sum(probs[level + 1], parents[level]), probs[level])
        expected = expected - geometric_consistency(weights[level], weights[level + 1], parents[level])
    torch.manual_seed(11)
    order = torch.rand(1, 7).argsort(dim=1)[0]  # dissimilar_from 2 of 3 levels: only level 2 (0-based row 1)
    expected = expected + margin_dissimilarity(probs[1], torch.tensor(TABLE[1])[labels], order)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("spec, match", [
    ({"name": "hafeature", "dissimilar_from": 3}, r"dissimilar_from = 3.*1\.\.2"),
    ({"name": "hafeature"}, "needs `dissimilar_from`"),
    ({"name": "flamingo"}, "needs the hierarchy's level x class table"),
])
def test_hierarchical_loss_errors_name_the_culprit(spec, match):
    with pytest.raises(ValueError, match=match):
        build_loss(spec, level_table=None if spec["name"] == "flamingo" else TABLE)


@pytest.mark.parametrize("output, match", [
    (per_level_head(FlamingoClassifiers, 6, [2, 3, 6])(torch.randn(4, 6)),
     r"have \[2, 3, 6\] classes, the hierarchy's levels \[2, 4, 6\]"),
    (ModelOutput(torch.randn(4, 6), torch.randn(4, 6)), r"have \[\] classes.*model.level_heads: flamingo"),
])
def test_loss_refuses_level_logits_that_are_not_the_hierarchy_levels(output, match):
    with pytest.raises(ValueError, match=match):
        build_loss({"name": "flamingo"}, level_table=TABLE)(output, torch.tensor([0, 1, 2, 3]))


# ---- config -----------------------------------------------------------------------------------------
def test_every_haframe_dataset_lists_the_nine_rows_in_table_order():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for dataset in ("cifar100", "fgvc_aircraft", "inaturalist19", "tiered_imagenet"):
        rows = [m for m in config["datasets"][dataset]["experiments"]["main"]["methods"] if m != "haframe_noloss"]
        assert rows == ["ce_t1", "crm_t1", "flamingo_t1", "hafeature_t1",
                        "ce_t2", "crm_t2", "flamingo_t2", "hafeature_t2", "haframe"], dataset


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["flamingo_t1"]["model"].pop("level_heads"), "loss 'flamingo' needs model.level_heads"),
    (lambda m: m["hafeature_t1"]["loss"].update(name="ce"), "level_heads 'hafeature' needs loss name"),
    (lambda m: m["hafeature_t2"]["loss"].pop("dissimilar_from"), "dissimilar_from is required"),
])
def test_config_check_pairs_level_heads_with_their_loss(edit, match):
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    edit(config["datasets"]["synthetic"]["experiments"]["main"]["methods"])
    with pytest.raises(ConfigError, match=match):
        check_config(config)


# ---- a short run through the library writes the output contract ------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    arrays, rows = make_synthetic(seed=1, branching=(2, 2, 2), n_train=8, n_val=2, n_test=3)
    save_arrays(folder / "arrays.npz", arrays)
    write_paths_csv(folder / "paths.csv", Hierarchy(rows))
    order, distances, levels = build_hierarchy_outputs({"paths": folder / "paths.csv"},
                                                       [str(c) for c in arrays["class_names"]])
    write_distance_csv(folder / "distances.csv", order, distances)
    write_json(folder / "levels.json", levels)
    return {"data": str(folder / "arrays.npz"), "distances": str(folder / "distances.csv"),
            "levels": str(folder / "levels.json")}


def run_spec(head, level_heads, loss):
    return {"dataset": "synthetic", "experiment": "main", "method": f"{level_heads}_{head}", "kind": "hierarchy",
            "label_level": "fine", "source": {"kind": "synthetic"}, "model_type": "I", "device": "cpu",
            "model": {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": head,
                      "level_heads": level_heads},
            "loss": loss, "frame": {}, "crm_of": None, "longtail": None, "pilot": None,
            "train": {"epochs": 2, "batch_size": 16, "eval_batch_size": 64, "collapse_every": 1,
                      "collapse_seeds": [0], "select": "best_val", "augment": "crop_flip", "momentum": 0.9,
                      "weight_decay": 5e-4, "schedule": "cosine_per_epoch", "precision": "fp32",
                      "lr": {"backbone": 0.05, "head": 0.1, "classifier": 0.1}}}


@pytest.mark.parametrize("head, level_heads, loss", [
    ("linear", "flamingo", {"name": "flamingo"}),
    ("type2", "hafeature", {"name": "hafeature", "dissimilar_from": 1}),
])
def test_short_run_writes_the_output_contract(inputs, tmp_path, head, level_heads, loss):
    names = ("test_logits.npz", "checkpoint_best.pt", "history.json", "collapse.json", "provenance.json")
    outputs = {"run_dir": str(tmp_path), **{n.split(".")[0].replace("_best", ""): str(tmp_path / n) for n in names}}
    spec = run_spec(head, level_heads, loss)
    run_training(copy.deepcopy(spec), 0, inputs, outputs)

    scores = np.load(outputs["test_logits"])
    assert scores["scores"].shape == (len(scores["labels"]), 8) and np.isfinite(scores["scores"]).all()
    history = read_json(outputs["history"])
    assert len(history["epochs"]) == 2 and all(np.isfinite(e["train_loss"]) for e in history["epochs"])
    assert [c["epoch"] for c in read_json(outputs["collapse"])["history"]] == [2]  # official sampling: after e + 1
    dump_features(spec, 0, {**inputs, "checkpoint": outputs["checkpoint"]}, tmp_path / "features.npz")
    features = np.load(tmp_path / "features.npz")
    assert features["classifier_weight"].shape == (8, features["test_features"].shape[1])
