"""What made a run (featgeom.lineage): the training code it hashes and how a changed part is named."""
from featgeom.lineage import describe_changes, training_code_modules


def test_the_training_code_is_what_a_training_job_runs():
    """featgeom.runner and its featgeom imports, recursively (relative imports included); not what only reports,
    orchestrates or records."""
    modules = training_code_modules()
    assert {"featgeom.runner", "featgeom.train", "featgeom.checkpoint", "featgeom.losses", "featgeom.models.heads",
            "featgeom.models.backbones", "featgeom.data.loaders", "featgeom.step"} <= modules.keys()
    assert not {"featgeom.reporting", "featgeom.plots", "featgeom.packs", "featgeom.config", "featgeom.provenance",
                "featgeom.lineage", "featgeom.run_guard", "featgeom.layout"} & modules.keys()


def test_a_changed_part_is_named_in_words():
    made = {"spec": "a", "code": "b", "frame": None, "input:distances": "c", "input:data": "d"}
    assert describe_changes(made, dict(made)) is None
    assert describe_changes(made, {**made, "input:distances": "x", "frame": "y"}) == (
        "the frame, the hierarchy distances changed since it was written")
    assert "an older featgeom" in describe_changes(None, made)
