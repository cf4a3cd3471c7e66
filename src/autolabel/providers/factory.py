"""Build the provider a command asked for, from settings and CLI flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autolabel.errors import ConfigError
from autolabel.providers.base import Provider

if TYPE_CHECKING:
    from autolabel.ontology.schema import Ontology
    from autolabel.settings import Settings

PROVIDERS = ("local", "openai")


def create_provider(
    settings: Settings,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    structured: str | None = None,
    ontology: Ontology | None = None,
) -> Provider:
    """``local`` → the embedded llama.cpp model, or for an ontology with image input the
    embedded image classifier; ``openai`` → an OpenAI-compatible endpoint.

    Arguments win over settings. A base URL without an explicit provider means
    ``openai`` (pointing at an endpoint only makes sense for it).
    """
    base_url = base_url or settings.base_url
    if provider is None:
        provider = "openai" if base_url else settings.provider
    kind = provider.strip().lower()
    if kind == "local" and ontology is not None and ontology.has_image:
        return _local_image(ontology, model, settings)
    model = model or settings.model
    if kind == "local":
        # Lazy: importing llama.cpp costs time and is an optional extra.
        from autolabel.providers.local import LocalProvider
        from autolabel.providers.models import DEFAULT_MODEL, resolve_model

        name = model or DEFAULT_MODEL
        return LocalProvider(
            resolve_model(name),
            model_name=name,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
        )
    if kind == "openai":
        from autolabel.providers.capabilities import CapabilityCache
        from autolabel.providers.openai import OpenAIProvider

        if not model:
            raise ConfigError(
                "the openai provider needs a model name",
                hint="pass --model (e.g. --model gpt-4o-mini) or set AUTOLABEL_MODEL",
            )
        return OpenAIProvider(
            model=model,
            base_url=base_url,
            api_key=settings.resolved_api_key(),
            timeout_s=settings.timeout_s,
            structured=structured or settings.structured,
            # What the endpoint accepts, learned by an earlier run or ``doctor``.
            capability_cache=CapabilityCache(),
        )
    raise ConfigError(
        f"unknown provider '{provider}'",
        hint=f"choose one of: {', '.join(PROVIDERS)}",
    )


def _local_image(ontology: Ontology, model: str | None, settings: Settings) -> Provider:
    from autolabel.providers.image_local import LocalImageProvider, check_task

    check_task(ontology.task)
    # Only an explicit --model is checked: AUTOLABEL_MODEL names the text model.
    if model and not model.startswith("efficientnet-lite0"):
        raise ConfigError(
            f"the embedded image model is EfficientNet-Lite0; it cannot run '{model}'",
            hint="drop --model, or serve the model behind an OpenAI-compatible endpoint "
            "and pass --base-url",
        )
    return LocalImageProvider(threads=settings.n_threads)


__all__ = ["PROVIDERS", "create_provider"]
