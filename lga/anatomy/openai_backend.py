"""Anatomy from any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp).

Only the standard library is used (``urllib.request`` + ``json``). One request per label::

    POST {base_url}/chat/completions
    {"model": ..., "messages": [system, user], "temperature": ..., "max_tokens": ..., "seed": ...}

Robustness: every request has a timeout; 429 and 5xx answers, timeouts and refused connections
are retried with exponential backoff (``backoff_s * 2**k``, capped at ``max_backoff_s``), and a
``Retry-After`` header is respected. Other HTTP errors (400, 401, 404, ...) fail at once.

Secrets: the API key is read from the environment variable ``api_key_env`` (default
``OPENAI_API_KEY``) at each request and is never stored on the object; it is never written to a
log, an exception message or a ``repr`` (every message is passed through :meth:`_redact`, in
case a server echoes it back). A missing key is allowed: local servers need none.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from .backends import AnatomyBackend, BackendError
from .prompts import PromptSpec

__all__ = ["OpenAIBackend"]

logger = logging.getLogger("lga.anatomy.openai")

_RETRY_STATUS = {429, 500, 502, 503, 504, 520, 521, 522, 524, 529}


class OpenAIBackend(AnatomyBackend):
    """A chat-completions client for anatomy generation.

    Args:
        model: the model name the server expects (``"gpt-4o-mini"``, ``"qwen2.5:7b"``, ...).
        base_url: the API root, e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``.
        api_key_env: name of the environment variable that holds the key (may be unset).
        timeout_s: seconds before one request is abandoned (then retried).
        max_retries: how many times one request is retried after a transient failure.
        backoff_s, max_backoff_s: first retry delay and its cap; ``Retry-After`` overrides
            the delay (also capped).
        temperature: for the first attempt; ``retry_temperature`` for re-asks after a parse error.
        max_tokens: answer length limit.
        seed: sent as ``seed + attempt`` (servers that support it sample reproducibly);
            ``send_seed=False`` leaves it out for servers that reject the field.
    """

    name = "openai"
    batch_size = 1

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0, temperature: float = 0.0,
                 retry_temperature: float = 0.7, max_tokens: int = 512, seed: int = 0,
                 send_seed: bool = True):
        if not model:
            raise ValueError("OpenAIBackend needs a model name")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.temperature = temperature
        self.retry_temperature = retry_temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.send_seed = send_seed

    def __repr__(self) -> str:
        return (f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r})")

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def provenance(self) -> dict:
        prov = super().provenance()
        prov["notes"] = f"OpenAI-compatible server {self.base_url}"
        return prov

    # ------------------------------------------------------------------------------------------
    def generate(self, labels: Sequence[str], spec: PromptSpec,
                 attempt: int = 0) -> dict[str, str | BackendError]:
        out: dict[str, str | BackendError] = {}
        for label in labels:
            body = {"model": self.model, "messages": spec.messages(label),
                    "temperature": self.temperature if attempt == 0 else self.retry_temperature,
                    "max_tokens": self.max_tokens}
            if self.send_seed:
                body["seed"] = self.seed + attempt
            try:
                out[label] = self._complete(body, label)
            except BackendError as e:
                out[label] = e
        return out

    def _complete(self, body: dict, label: str) -> str:
        """POST one request with retries; return the assistant message text."""
        payload = json.dumps(body).encode("utf-8")
        last = "no attempt made"
        for k in range(self.max_retries + 1):
            delay = min(self.backoff_s * 2 ** k, self.max_backoff_s)
            try:
                raw = self._post(payload)
                return self._content(raw, label)
            except urllib.error.HTTPError as e:
                detail = _read_body(e)
                last = self._redact(f"HTTP {e.code} {e.reason} from {self.url}: {detail}")
                if e.code not in _RETRY_STATUS:
                    raise BackendError(f"class {label!r}: {last}") from None
                retry_after = _retry_after_seconds(e.headers.get("Retry-After") if e.headers else None)
                if retry_after is not None:
                    delay = min(max(retry_after, 0.0), self.max_backoff_s)
            except (TimeoutError, socket.timeout):
                last = f"timed out after {self.timeout_s:g} s waiting for {self.url}"
            except urllib.error.URLError as e:
                if isinstance(e.reason, (TimeoutError, socket.timeout)):
                    last = f"timed out after {self.timeout_s:g} s waiting for {self.url}"
                else:
                    last = self._redact(f"cannot reach {self.url}: {e.reason}")
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                last = self._redact(f"connection to {self.url} failed: {type(e).__name__}: {e}")
            if k < self.max_retries:
                logger.warning("class %r: %s; retry %d/%d in %.2f s", label, last, k + 1,
                               self.max_retries, delay)
                time.sleep(delay)
        raise BackendError(f"class {label!r}: gave up after {self.max_retries + 1} attempts: {last}")

    def _post(self, payload: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "lga-anatomy"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return response.read()

    def _content(self, raw: bytes, label: str) -> str:
        try:
            data = json.loads(raw.decode("utf-8"))
            content = data["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
            snippet = raw[:200].decode("utf-8", "replace")
            raise BackendError(self._redact(
                f"class {label!r}: malformed chat-completions response from {self.url}: {snippet!r}")
            ) from None
        if not isinstance(content, str):
            raise BackendError(f"class {label!r}: the response from {self.url} has no text content "
                               f"(got {type(content).__name__})")
        return content

    def _redact(self, text: str) -> str:
        """``text`` with the API key (if set) replaced by ``***``."""
        key = os.environ.get(self.api_key_env)
        if key:
            text = text.replace(key, "***")
        return text


def _read_body(error: urllib.error.HTTPError, limit: int = 300) -> str:
    try:
        body = error.read()[:limit].decode("utf-8", "replace")
    except Exception:  # the body is only used for the message
        return ""
    return " ".join(body.split())


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
