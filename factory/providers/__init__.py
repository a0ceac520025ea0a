"""LLM providers behind one small interface; `make_provider` picks one by name."""

from factory.errors import KahaniError
from factory.providers.base import Provider
from factory.settings import LLMLimits


def require_access(name: str, model: str, api_key: str | None, base_url: str | None) -> None:
    """Fail before anything is sent or written when an endpoint cannot be used."""
    if name in ("openai", "openai-batch") and not api_key and not base_url:
        raise KahaniError(
            f"--provider {name} needs OPENAI_API_KEY (or --api-key) or a --base-url of an "
            "OpenAI-compatible server; or use --provider local (offline) or g4f (free, no key)"
        )
    if name == "local":
        from factory.providers.local import resolve_local_model

        resolve_local_model(model)


def make_provider(
    name: str, model: str, api_key: str | None, base_url: str | None, limits: LLMLimits
) -> Provider:
    """The provider for an endpoint. Imports are local: each backend pulls in heavy libraries."""
    require_access(name, model, api_key, base_url)
    if name == "openai":
        from factory.providers.openai_chat import NO_KEY, OpenAIChatProvider

        # OpenAI-compatible servers (vLLM, Ollama, llama.cpp) accept any key.
        return OpenAIChatProvider(api_key or NO_KEY, base_url, limits)
    if name == "g4f":
        from factory.providers.g4f_chat import G4FProvider

        return G4FProvider(limits.timeout, base_url, api_key)
    if name == "local":
        from factory.providers.local import LocalProvider

        return LocalProvider(model, batch_size=limits.batch_size, threads=limits.threads)
    raise KahaniError(f"unknown provider {name!r}; choose openai, openai-batch, g4f or local")
