"""Reading config files with errors that name file, line and column.

Snakemake reads the files given with `--configfile` before any line of the Snakefile runs, and reports a YAML
syntax error as "Config file is not valid JSON or YAML" without naming the file or the line. The Snakefile reads
its default config through `load_config_file` first, and `tools/check_config.py` checks any files the same way
(and against the schema) before Snakemake is started. No torch.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from featgeom.config import deep_merge


def load_config_file(path) -> dict:
    """The top-level mapping of a YAML (or JSON) config file; ValueError naming the file and where it is broken."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read as a config file ({type(err).__name__}: {err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(_syntax_message(path, text, err)) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must map keys at its top level, found {type(data).__name__}")
    return data


def _syntax_message(path: Path, text: str, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    hint = " (a tab in the indentation? YAML indents with spaces only)" if "\t" in _line(text, mark) else ""
    return f"{path}{where}: YAML syntax error: {problem}" + (f", {context}" if context else "") + hint


def _line(text: str, mark) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    return lines[mark.line] if mark.line < len(lines) else ""


def merge_config_files(paths) -> dict:
    """The config Snakemake builds from `--configfile A B ...`: later files' keys override, nested mappings merge."""
    merged: dict = {}
    for path in paths:
        merged = deep_merge(merged, load_config_file(path))  # as snakemake.utils.update_config merges them
    return merged


def checked_config(config: dict, schema_path) -> dict:
    """`config` with the schema's defaults written out and the pilot limits applied, after every check the
    Snakefile makes before building jobs (schema, cross-references, published names); ConfigError naming the key
    path otherwise. The library reads its options from this config (and the run specs featgeom.config resolves
    from it) without defaults of its own."""
    from featgeom.config import apply_limits, check_config, validate_schema
    from featgeom.published import check_published_names, read_published

    schema = load_config_file(schema_path)
    validate_schema(config, schema)
    limited = apply_limits(with_schema_defaults(config, schema))
    check_config(limited)
    check_published_names(limited, read_published())
    return limited


def with_schema_defaults(config: dict, schema: dict) -> dict:
    """A copy of a schema-valid `config` with the `default:` of every absent key written in, wherever its enclosing
    mapping exists or is itself defaulted (as snakemake.utils.validate(..., set_default=True) does); defaults under
    an `if`/`then` only where the `if` holds (a kind's own defaults)."""
    import jsonschema  # parse-time only, as in featgeom.config.validate_schema

    filled = _unshared_copy(config)
    for _ in _default_writer(jsonschema)(schema).iter_errors(filled):
        pass  # validate_schema reported the errors; this pass only writes the defaults
    return filled


def _default_writer(jsonschema):
    """Draft 2020-12 validation that writes a property's `default` into the instance before checking it."""
    check_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def write_defaults(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": write_defaults})


def _unshared_copy(value):
    """A deep copy in which no mapping or list is shared: YAML anchors (`train: *demo_train`) make one object of
    blocks that the schema sees in different places, and a default belongs only where its schema puts it."""
    if isinstance(value, dict):
        return {key: _unshared_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared_copy(item) for item in value]
    return value
