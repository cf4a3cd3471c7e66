"""The openai path against a real third-party server: llama-cpp-python's ``llama_cpp.server``.

Our loopback server encodes our own assumptions about how servers fail; this one does
not. It serves the small Gemma GGUF the embedded tests use, so the labels of the two
paths can be compared on the same model, prompt and items. (``doctor``'s table is tested
against the loopback server in tests/cli/test_doctor_and_failures.py; a run of it against
this server is shown in the README.)
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.ontology.loader import load_ontology
from autolabel.providers.base import Provider
from autolabel.providers.openai import OpenAIProvider
from autolabel.store.database import Database
from autolabel.store.tables import Item, Prediction
from autolabel.testing.llama_server import LlamaCppServer, llama_server_available

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 4
ALIAS = "gemma3-270m"


@pytest.fixture(scope="session")
def llama_server(gemma_path: Path) -> Iterator[LlamaCppServer]:
    if not llama_server_available():
        pytest.skip("needs llama-cpp-python[server] (in the test extra)")
    # n_ctx small: the server keeps logits for every context position (logits_all, which
    # its logprobs need) and takes a log-softmax over all n_ctx × 262k of them on every
    # request that asks for logprobs; the SST-2 prompts are ~250 tokens.
    with LlamaCppServer(gemma_path, alias=ALIAS, n_ctx=512, n_threads=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def sst2_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first items of the shipped SST-2 sample."""
    src = REPO / "examples/sst2_sample.csv"
    out = tmp_path_factory.mktemp("sst2") / "sst2_head.csv"
    with src.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[: N_ITEMS + 1]
    with out.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return out


def _label(provider: Provider, data: Path, db_url: str) -> dict[str, Prediction]:
    db = Database(db_url)
    job = LabelJob(
        ontology=load_ontology(REPO / "ontologies/sst2.yaml"),
        data=data,
        provider=provider,
        db=db,
        id_column="id",
        concurrency=1,  # the server answers one request at a time
        progress=False,
    )
    summary = run_job(job)
    with db.session() as s:
        rows = s.exec(
            select(Prediction, Item.external_id)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == summary.run_id)
        ).all()
    return {ext: p for p, ext in rows}


def test_real_server_labels_every_item_with_logprob_confidence_like_the_embedded_model(
    llama_server: LlamaCppServer, gemma_provider: Any, sst2_items: Path, tmp_path: Path
):
    provider = OpenAIProvider(ALIAS, base_url=llama_server.base_url, timeout_s=600)
    served = _label(provider, sst2_items, f"sqlite:///{tmp_path / 'served.db'}")
    embedded = _label(gemma_provider, sst2_items, f"sqlite:///{tmp_path / 'embedded.db'}")

    assert len(served) == N_ITEMS
    assert all(p.error is None and p.label in ("positive", "negative") for p in served.values())
    assert {p.method for p in served.values()} == {"token_logprobs"}
    # What the negotiation found: json_schema refused with a 500, the schema form works.
    caps = provider.capabilities
    assert caps.form == "json_object_schema" and caps.form_confirmed
    assert caps.rejected["json_schema"].startswith("HTTP 500")
    # The server's own words (as doctor and the failure summary show them), no traceback.
    assert "Input should be 'text' or 'json_object'" in caps.rejected["json_schema"]
    assert 'File "' not in caps.rejected["json_schema"]
    assert caps.logprobs is True and caps.logprobs_shape == "chat"

    # Same model, same prompt. The embedded path scores each whole label ({"label":
    # "positive"}) and takes the argmax; the server greedily decodes the first label
    # token under the schema grammar. They agree unless the model is nearly undecided,
    # so any item where they differ must be one the embedded model itself found close.
    for key, pred in served.items():
        local = embedded[key]
        assert local.error is None
        if pred.label != local.label:
            assert local.distribution[pred.label] >= 0.25, (key, pred.label, local.distribution)
    agree = sum(served[k].label == embedded[k].label for k in served)
    assert agree >= N_ITEMS - 1
