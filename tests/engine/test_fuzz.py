"""Fuzzing (Hypothesis): malformed ontologies, inputs and model answers.

Only errors of the documented hierarchy may escape, and every CLI entry point exits
with a located message and no traceback. The CLI runs in-process (``main``), so an
exception other than the hierarchy's would fail the test as it would print a
traceback for a user; the output is scanned for "Traceback" as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from autolabel.cli.main import main
from autolabel.errors import AnswerError
from autolabel.ontology import load_ontology
from autolabel.ontology.answers import parse_answer
from autolabel.providers.base import ProviderResponse, Sample, TokenLogprob

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=int(os.environ.get("AUTOLABEL_FUZZ_EXAMPLES", "500")),
    deadline=None,
    # A corpus scan: report the failing example as drawn, without minutes of shrinking.
    phases=(Phase.explicit, Phase.generate),
    derandomize=True,  # the same corpus every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ONTOLOGIES = [load_ontology(REPO / "ontologies" / f"{n}.yaml") for n in ("sst2", "goemotions")]
ONTOLOGIES += [
    load_ontology(REPO / "ontologies" / f"{n}.yaml") for n in ("wnut17", "product_fields")
]
VALID = yaml.safe_load((REPO / "ontologies" / "sst2.yaml").read_text(encoding="utf-8"))
SPAN = yaml.safe_load((REPO / "ontologies" / "wnut17.yaml").read_text(encoding="utf-8"))
FIELDS = yaml.safe_load((REPO / "ontologies" / "product_fields.yaml").read_text(encoding="utf-8"))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text, text
    code = exited.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), text


# -- ontologies ----------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["classify", "multi_label", "spans", "fields", "", "CLASSIFY", "x" * 300]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def broken_ontology(draw: st.DrawFn) -> str:
    base: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from([VALID, SPAN, FIELDS]))))
    how = draw(st.sampled_from(["mutate", "mutate", "mutate", "text", "yaml_junk"]))
    if how == "text":
        return draw(st.text(max_size=300))
    if how == "yaml_junk":
        return draw(
            st.sampled_from(
                ["{", "- [", "a: b: c", ":\n  -", "\t- x", "!!python/object:os.system x"]
            )
        ) + draw(st.text(max_size=50))
    for _ in range(draw(st.integers(1, 4))):
        keys = list(base) or ["name"]
        key = draw(
            st.sampled_from([*keys, "labels", "fields", "input", "review", "examples", "nope"])
        )
        action = draw(st.sampled_from(["drop", "set", "label", "dup"]))
        if action == "drop":
            base.pop(key, None)
        elif action == "set":
            base[key] = draw(values)
        elif action == "label" and isinstance(base.get("labels"), list) and base["labels"]:
            i = draw(st.integers(0, len(base["labels"]) - 1))
            base["labels"][i] = draw(values)
        elif action == "dup" and isinstance(base.get("labels"), list) and base["labels"]:
            base["labels"].append(base["labels"][0])
    return yaml.safe_dump(base, allow_unicode=True)


@FUZZ
@given(doc=broken_ontology())
def test_malformed_ontologies_exit_cleanly(
    doc: str, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path_factory.mktemp("ont") / "fuzzed.yaml"
    path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    code, text = _cli(capsys, "prompt", "show", str(path))
    if code != 0:
        assert code == 2 and "error:" in text
        assert str(path) in text or "fuzzed" in text, text  # the message says where


# -- inputs --------------------------------------------------------------------------

cell = st.one_of(
    st.text(max_size=40),
    st.just(""),
    st.just("\x00"),
    st.sampled_from(["x" * 1_000_000, '{"broken', "\r\n", "\ufeff", "🙂" * 5]),
)


@st.composite
def broken_input(draw: st.DrawFn, root: Path) -> Path:
    kind = draw(st.sampled_from(["csv", "tsv", "jsonl", "parquet", "special"]))
    if kind == "special":
        which = draw(st.sampled_from(["dir", "missing", "empty", "binary", "header", "dup_ids"]))
        if which == "dir":
            (root / "adir.csv").mkdir(exist_ok=True)
            return root / "adir.csv"
        if which == "missing":
            return root / "missing.csv"
        p = root / f"{which}.csv"
        if which == "empty":
            p.write_bytes(b"")
        elif which == "binary":
            p.write_bytes(draw(st.binary(max_size=200)) + b"\xff\xfe\x00\x80")
        elif which == "header":
            p.write_text("id,text\n", encoding="utf-8")
        else:
            p.write_text("id,text\n1,a good film\n1,a bad film\n2,\n", encoding="utf-8")
        return p
    columns = draw(st.lists(st.sampled_from(["id", "text", "label", "", "text "]), max_size=3))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=4), max_size=5))
    p = root / f"data.{kind}"
    if kind == "parquet":
        cols = list(dict.fromkeys(c or "c" for c in columns)) or ["other"]
        table = pa.table(
            {c: [r[i] if i < len(r) else None for r in rows] for i, c in enumerate(cols)}
        )
        pq.write_table(table, p)
        return p
    if kind == "jsonl":
        lines = []
        for r in rows:
            if draw(st.booleans()):
                lines.append(json.dumps(dict(zip(columns, r, strict=False))))
            else:
                lines.append(draw(st.sampled_from(["{", "[1,2]", "null", '"s"', '{"text": 5}'])))
        p.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        return p
    sep = "," if kind == "csv" else "\t"
    body = sep.join(columns) + "\n" + "\n".join(sep.join(r) for r in rows)
    raw = body.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        raw += b"\n\xff\xfe bad bytes\n"
    p.write_bytes(raw)
    return p


@FUZZ
@given(data=st.data())
def test_malformed_inputs_exit_cleanly(
    data: st.DataObject,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path_factory.mktemp("in")
    path = data.draw(broken_input(root))
    code, text = _cli(
        capsys, "plan", "sst2", str(path), "--base-url", "http://127.0.0.1:9/v1", "--model", "m"
    )
    if code != 0:
        assert code == 2 and "error:" in text
        assert path.name in text, text  # located: names the file


# -- model answers ---------------------------------------------------------------------

answers = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            '{"label": "positive"',
            '{"label": null}',
            '{"labels": [1, {}]}',
            "[]",
            "null",
            '{"entities": [{"text": 5, "label": "x"}]}',
            '{"price": "NaN"}',
            "```json\n{}```",
        ]
    ),
    values.map(json.dumps),
)


@FUZZ
@given(raw=answers, which=st.integers(0, len(ONTOLOGIES) - 1), lp=st.booleans())
def test_model_answers_parse_or_raise_answer_error(raw: str, which: int, lp: bool) -> None:
    from autolabel.engine.confidence import score_response

    ont = ONTOLOGIES[which]
    item = {name: "Paris is lovely in spring, 12 EUR" for name in ont.input.fields}
    try:
        parse_answer(ont, raw, item)
    except AnswerError:
        pass
    logprobs = [TokenLogprob(ch, -0.1) for ch in raw] if lp else None
    response = ProviderResponse(samples=[Sample(raw, logprobs)], model="m")
    try:
        score_response(ont, response, item)
    except AnswerError:
        pass
