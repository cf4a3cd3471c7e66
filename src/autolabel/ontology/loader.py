"""Load ontology YAML files with errors that point at file, line and field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autolabel.errors import OntologyError
from autolabel.ontology.schema import Ontology, _LocatedError

# ./ontologies first (the user's own), then the ones shipped in a source checkout.
ONTOLOGY_DIRS = (Path("ontologies"), Path(__file__).resolve().parents[3] / "ontologies")


def resolve_ontology_path(name_or_path: str | Path) -> Path:
    """Accept a path, or a bare name found in ./ontologies (``sst2`` → ontologies/sst2.yaml)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for folder in ONTOLOGY_DIRS:
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{name_or_path}{suffix}"
            if candidate.exists():
                return candidate
    raise OntologyError(
        f"ontology not found: {name_or_path}",
        hint="give a path to a YAML file, or a name from ./ontologies (e.g. 'sst2')",
    )


def load_ontology(name_or_path: str | Path) -> Ontology:
    path = resolve_ontology_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    return parse_ontology(text, source=str(path))


def parse_ontology(text: str, *, source: str = "<string>") -> Ontology:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise OntologyError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise OntologyError(f"{source}: an ontology must be a YAML mapping (name:, task:, ...)")
    try:
        return Ontology.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(err, root, source) for err in exc.errors()]
        raise OntologyError(
            f"{source}: invalid ontology ({len(problems)} problem(s))",
            problems=problems,
            hint="see README section 'Ontology reference' for every key",
        ) from None


def _describe(err: Any, root: yaml.Node | None, source: str) -> str:
    loc: tuple[Any, ...] = tuple(err["loc"])
    message = err["msg"]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, _LocatedError):
        loc, message = loc + tuple(original.loc), original.message
    elif err["type"] == "extra_forbidden":
        message = f"unknown key '{loc[-1]}'" if loc else "unknown key"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    return f"{where} {_format_loc(loc) or '<root>'}: {message}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node that ``loc`` reaches."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    # Point at the key line for a scalar, at the value for a collection.
                    best = key.start_mark.line + 1
                    node = value
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return best
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best
