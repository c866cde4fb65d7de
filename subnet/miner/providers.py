"""LLM providers of the reference miner: OpenAI-compatible chat completions, and the offline strategy.

Every networked provider is `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`,
configured from the environment when the provider is loaded (never at import time):

* `openai`: https://api.openai.com/v1, model gpt-4o-mini, API key required
* `openrouter`: https://openrouter.ai/api/v1, model google/gemini-2.0-flash-lite-001, API key required
* `gemini`: https://generativelanguage.googleapis.com/v1beta/openai, model gemini-2.0-flash-001, API key required
* `vllm`: http://localhost:8000/v1, model NousResearch/Meta-Llama-3-8B-Instruct, API key optional
* `ollama`: http://localhost:11434/v1, model mistral-nemo, API key optional
* `chutes`: https://llm.chutes.ai/v1, model deepseek-ai/DeepSeek-V3, API key required

`<P>` is the provider name in upper case: `BITRECS_LLM_<P>_BASE_URL` and `BITRECS_LLM_<P>_MODEL` override the
defaults above, `BITRECS_LLM_<P>_API_KEY` is the Bearer key. Shared settings:
`BITRECS_LLM_TIMEOUT` (read timeout in seconds, default 4: validators give miners 5 s),
`BITRECS_LLM_CONNECT_TIMEOUT` (default 2) and `BITRECS_LLM_MAX_TOKENS` (default 2048). `offline` needs
nothing: it answers with `subnet.miner.strategies` text similarity over the request's context.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import requests

OFFLINE: Final = "offline"


@dataclass(frozen=True)
class _Defaults:
    base_url: str
    model: str
    key_required: bool
    headers: Mapping[str, str] = field(default_factory=dict)


_PROVIDERS: Final[dict[str, _Defaults]] = {
    "openai": _Defaults("https://api.openai.com/v1", "gpt-4o-mini", key_required=True),
    "openrouter": _Defaults(
        "https://openrouter.ai/api/v1",
        "google/gemini-2.0-flash-lite-001",
        key_required=True,
        # Attribution headers the public miner sends to OpenRouter.
        headers={"HTTP-Referer": "https://bitrecs.ai", "X-Title": "bitrecs"},
    ),
    "gemini": _Defaults(
        "https://generativelanguage.googleapis.com/v1beta/openai", "gemini-2.0-flash-001", key_required=True
    ),
    "vllm": _Defaults("http://localhost:8000/v1", "NousResearch/Meta-Llama-3-8B-Instruct", key_required=False),
    "ollama": _Defaults("http://localhost:11434/v1", "mistral-nemo", key_required=False),
    "chutes": _Defaults("https://llm.chutes.ai/v1", "deepseek-ai/DeepSeek-V3", key_required=True),
}
PROVIDER_NAMES: Final[tuple[str, ...]] = (*_PROVIDERS, OFFLINE)


class ProviderError(Exception):
    """A completion could not be obtained; the miner falls back to the offline strategy."""


class ProviderConfigError(ProviderError):
    """The provider is unknown or a required environment variable is missing."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the timeout."""


class ProviderHTTPError(ProviderError):
    """The provider answered with a non-2xx status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ProviderAuthError(ProviderHTTPError):
    """The provider refused the key (401/403)."""


class ProviderResponseError(ProviderError):
    """The provider answered 2xx with a body that is not a chat completion."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str


@dataclass(frozen=True)
class ChatProvider:
    """One OpenAI-compatible chat-completions endpoint; `complete` is the only network call."""

    name: str
    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 4.0
    connect_timeout: float = 2.0
    max_tokens: int = 2048
    temperature: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def complete(self, *, system: str, user: str, timeout: float | None = None) -> Completion:
        """Return the first choice's text for one system + user message; raises a `ProviderError` subclass."""
        headers = {"Content-Type": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        read_timeout = self.timeout if timeout is None else max(0.1, min(self.timeout, timeout))
        try:
            response = requests.post(
                f"{self.base_url.rstrip('/')}/chat/completions",
                json=body,
                headers=headers,
                timeout=(min(self.connect_timeout, read_timeout), read_timeout),
            )
        except requests.Timeout as exc:
            raise ProviderTimeout(f"{self.name} did not answer within {read_timeout:g} s") from exc
        except requests.RequestException as exc:
            raise ProviderError(f"{self.name} request failed: {exc.__class__.__name__}") from exc
        if response.status_code in (401, 403):
            raise ProviderAuthError(
                f"{self.name} refused the API key (HTTP {response.status_code})", status=response.status_code
            )
        if not 200 <= response.status_code < 300:
            raise ProviderHTTPError(f"{self.name} answered HTTP {response.status_code}", status=response.status_code)
        return Completion(text=_first_choice_text(response, provider=self.name), model=self.model)


def _first_choice_text(response: requests.Response, *, provider: str) -> str:
    try:
        data: Any = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderResponseError(f"{provider} answered with no chat completion") from exc
    if not isinstance(content, str):
        raise ProviderResponseError(f"{provider} answered with non-text content")
    return content


def _float_env(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ProviderConfigError(f"{name} must be a number, got {raw!r}") from exc


def load_provider(name: str, *, environ: Mapping[str, str] | None = None) -> ChatProvider | None:
    """Return the configured chat provider `name` from the environment, or None for `offline`.

    Raises `ProviderConfigError` for an unknown name or a missing required API key.
    """
    env = os.environ if environ is None else environ
    key = name.strip().lower()
    if key == OFFLINE:
        return None
    defaults = _PROVIDERS.get(key)
    if defaults is None:
        raise ProviderConfigError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}")
    prefix = f"BITRECS_LLM_{key.upper()}_"
    api_key = env.get(f"{prefix}API_KEY", "")
    if defaults.key_required and not api_key:
        raise ProviderConfigError(f"{prefix}API_KEY is not set")
    return ChatProvider(
        name=key,
        base_url=env.get(f"{prefix}BASE_URL") or defaults.base_url,
        model=env.get(f"{prefix}MODEL") or defaults.model,
        api_key=api_key,
        timeout=_float_env(env, "BITRECS_LLM_TIMEOUT", 4.0),
        connect_timeout=_float_env(env, "BITRECS_LLM_CONNECT_TIMEOUT", 2.0),
        max_tokens=int(_float_env(env, "BITRECS_LLM_MAX_TOKENS", 2048)),
        headers=dict(defaults.headers),
    )
