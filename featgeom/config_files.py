"""Reading config files with errors that name file, line and column.

Snakemake reads the files given with `--configfile` before any line of the Snakefile runs, and reports a YAML
syntax error as "Config file is not valid JSON or YAML" without naming the file or the line. The Snakefile reads
its default config through `load_config_file` first, and `tools/check_config.py` checks any files the same way
(and against the schema) before Snakemake is started. No torch.
"""
from __future__ import annotations

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
    """`config` with the pilot limits applied, after every check the Snakefile makes before building jobs
    (schema, cross-references, published names); ConfigError naming the key path otherwise."""
    from featgeom.config import apply_limits, check_config, validate_schema
    from featgeom.published import check_published_names, read_published

    validate_schema(config, load_config_file(schema_path))
    limited = apply_limits(config)
    check_config(limited)
    check_published_names(limited, read_published())
    return limited
