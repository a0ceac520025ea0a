"""LLM providers behind one small interface; `make_provider` picks one by name."""

from factory.errors import KahaniError
from factory.providers.base import Provider


def make_provider(
    name: str, *, model: str, api_key: str | None, base_url: str | None, timeout: float
) -> Provider:
    """The provider for a run. Imports are local: each backend pulls in heavy libraries."""
    if name == "openai":
        from factory.providers.openai_chat import OpenAIChatProvider

        if not api_key and not base_url:
            raise KahaniError(
                "--provider openai needs OPENAI_API_KEY (or --api-key) or a --base-url of an "
                "OpenAI-compatible server; or use --provider local (offline) or g4f (free, no key)"
            )
        # OpenAI-compatible servers (vLLM, Ollama, llama.cpp) accept any key.
        return OpenAIChatProvider(api_key or "not-needed", base_url, timeout)
    if name == "g4f":
        from factory.providers.g4f_chat import G4FProvider

        return G4FProvider(timeout, base_url, api_key)
    if name == "local":
        from factory.providers.local import LocalProvider

        return LocalProvider(model)
    raise KahaniError(f"unknown provider {name!r}; choose openai, openai-batch, g4f or local")
