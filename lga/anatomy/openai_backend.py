"""Anatomy from any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp).

The HTTP is the official ``openai`` client's, an optional extra (``pip install "lga[openai]"``).
One ``POST {base_url}/chat/completions`` per label, with the prompt's two messages and
``temperature``, ``max_tokens`` and ``seed``. The client times out each request (``timeout_s``)
and retries 408/409/429/5xx answers, timeouts and failed connections ``max_retries`` times with
exponential back-off (0.5 s doubling, capped at 8 s), honouring ``Retry-After`` up to 2 minutes
(a longer ``Retry-After`` fails at once). Other HTTP errors (400, 401, 404, ...) fail at once.

**The key.** The API key is read from one environment variable, ``api_key_env`` (default
``OPENAI_API_KEY``), at each :meth:`~OpenAIBackend.generate` call; it is kept only by the client
built for that call and never stored on the backend. It is sent as ``Authorization: Bearer`` and
nowhere else; the ``openai`` client's own environment variables cannot add a credential or an
organisation to the request (``Authorization``, ``OpenAI-Organization`` and ``OpenAI-Project`` are
set for every request here). A missing key is allowed (local servers need none): then no
``Authorization`` header is sent at all.

**Only to ``base_url``'s origin.** The HTTP client is built with ``follow_redirects=False``
(stated here rather than left to a default: the ``openai`` client follows redirects by default),
so a redirect is an error that names where it pointed, and a request hook refuses any request to
another scheme, host or port than ``base_url``'s before it is sent. The key never reaches a
second server, whatever the first one answers.

**Never in a message, a log, an answer or a file.** Every error message and log line of this
module is built from text passed through :func:`~lga.anatomy.redact.redact_secret` *before* it is
cut to :data:`MAX_MESSAGE_CHARS`, which also finds the key when it comes back escaped
(``sk\\u002d...``, ``%2D``, ``&#45;``, nested escapes), in full-width or other look-alike
characters Unicode folds onto it, or with invisible characters inside (soft hyphens, zero-width
spaces). While a call runs, the records of the ``openai``, ``httpx2`` and ``httpcore2`` loggers
and their children (which show a server's status line and headers at INFO/DEBUG) are redacted
the same way, as they are made. A model's answer is checked the same way before it leaves the
backend: an answer that holds the key (a server that echoes it in a 200) is not used; its class
fails with the answer shown redacted, so the key reaches neither the parser's messages, nor the
terminal, nor the anatomy file or its quality report.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .backend_base import AnatomyBackend, BackendError
from .prompts import PromptSpec
from .redact import redact_record, redact_secret

__all__ = ["OpenAIBackend", "redact_secret", "MAX_MESSAGE_CHARS", "MAX_BODY_CHARS"]

logger = logging.getLogger("lga.anatomy.openai")

MAX_MESSAGE_CHARS = 500
"""Most characters of one error message or log line (after redaction, never before)."""
MAX_BODY_CHARS = 16_384
"""Most characters of a server's text (error body, redirect target) read into a message."""

_LIBRARY_LOGGERS = ("openai", "httpx2", "httpcore2")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _OtherOriginError(RuntimeError):
    """A request to another origin than ``base_url``'s was about to be sent (and was not)."""


class _Failure(Exception):
    """Why one label failed, in words not yet redacted nor cut (see :func:`_bounded`)."""


class OpenAIBackend(AnatomyBackend):
    """A chat-completions client for anatomy generation.

    Args:
        model: the model name the server expects (``"gpt-4o-mini"``, ``"qwen2.5:7b"``, ...).
        base_url: the API root, e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``.
            Requests go to this origin (scheme, host, port) only.
        api_key_env: name of the environment variable that holds the key (may be unset).
        timeout_s: seconds before one request is abandoned (then retried).
        max_retries: how many times one request is retried after a transient failure.
        temperature: for the first attempt; ``retry_temperature`` for re-asks after a parse error.
        max_tokens: answer length limit.
        seed: sent as ``seed + attempt`` (servers that support it sample reproducibly);
            ``send_seed=False`` leaves it out for servers that reject the field.

    :meth:`generate` raises ImportError when the ``openai`` package (3.51 or later) is missing:
    ``pip install "lga[openai]"``.
    """

    name = "openai"
    batch_size = 1

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0, max_retries: int = 4,
                 temperature: float = 0.0, retry_temperature: float = 0.7, max_tokens: int = 512,
                 seed: int = 0, send_seed: bool = True):
        if not model:
            raise ValueError("OpenAIBackend needs a model name")
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"base_url must start with http:// or https:// and name a host, "
                             f"got {base_url!r}")
        if not api_key_env:
            raise ValueError("api_key_env must name an environment variable")
        if timeout_s <= 0 or max_retries < 0:
            raise ValueError(f"need timeout_s > 0 and max_retries >= 0, got {timeout_s}, {max_retries}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
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
        openai = _import_openai()
        key = os.environ.get(self.api_key_env) or None
        out: dict[str, str | BackendError] = {}
        with _redacted_library_logs(key), self._client(openai, key) as (client, sent):
            for label in labels:
                sent.clear()
                try:
                    out[label] = self._checked(self._complete(openai, client, key, spec, label, attempt), key)
                except _Failure as e:
                    tries = f"gave up after {len(sent)} attempts: " if len(sent) > 1 else ""
                    out[label] = BackendError(_bounded(redact_secret(f"class {label!r}: {tries}{e}", key)))
        return out

    @contextmanager
    def _client(self, openai, key: str | None) -> Iterator[tuple[object, list[str]]]:
        """An ``openai.OpenAI`` client for one call, and the list of the requests it has sent."""
        origin = _origin(self.base_url)
        sent: list[str] = []

        def same_origin_only(request) -> None:  # an httpx2 "request" event hook
            if _origin(str(request.url)) != origin:
                raise _OtherOriginError(f"refused to send a request to {str(request.url)!r}, "
                                        f"another origin than base_url {self.base_url!r}")
            sent.append(str(request.url))

        def log_failure(response) -> None:  # an httpx2 "response" event hook
            if response.status_code >= 300:
                logger.warning("%s", _bounded(redact_secret(
                    f"HTTP {response.status_code} from {self.url} (attempt {len(sent)} of "
                    f"{self.max_retries + 1})", key)))

        http = openai.DefaultHttpx2Client(
            follow_redirects=False, timeout=self.timeout_s,
            event_hooks={"request": [same_origin_only], "response": [log_failure]})
        client = openai.OpenAI(api_key=key or "no-key", base_url=self.base_url,
                               timeout=self.timeout_s, max_retries=self.max_retries, http_client=http)
        try:
            yield client, sent
        finally:
            client.close()
            http.close()

    def _complete(self, openai, client, key: str | None, spec: PromptSpec, label: str,
                  attempt: int) -> str:
        """One chat completion for ``label`` (the client retries): its text, or raise _Failure."""
        headers = {"Authorization": f"Bearer {key}" if key else openai.omit,
                   "OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit}
        try:
            completion = client.chat.completions.create(
                model=self.model, messages=spec.messages(label),
                temperature=self.temperature if attempt == 0 else self.retry_temperature,
                max_tokens=self.max_tokens, seed=self.seed + attempt if self.send_seed else openai.omit,
                extra_headers=headers)
        except _OtherOriginError as e:
            raise _Failure(str(e)) from None
        except openai.APITimeoutError:
            raise _Failure(f"timed out after {self.timeout_s:g} s waiting for {self.url}") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__
            if isinstance(cause, _OtherOriginError):
                raise _Failure(str(cause)) from None
            why = f"{type(cause).__name__}: {cause}" if cause else str(e)
            raise _Failure(f"cannot reach {self.url}: {why}") from None
        except openai.APIStatusError as e:
            raise _Failure(self._status_text(e.response)) from None
        except (openai.OpenAIError, ValueError, TypeError) as e:  # a 200 that is not a completion
            body = getattr(e, "doc", None) or str(e)
            raise _Failure(f"malformed chat-completions response from {self.url}: "
                           f"{body[:MAX_BODY_CHARS]}") from None
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError):
            raise _Failure(f"malformed chat-completions response from {self.url}: "
                           "no choices[0].message.content") from None
        if not isinstance(content, str):
            raise _Failure(f"the response from {self.url} has no text content "
                           f"(got {type(content).__name__})")
        return content

    def _checked(self, answer: str, key: str | None) -> str:
        """``answer``, or raise _Failure when it holds the key (in any spelling redaction sees)."""
        shown = redact_secret(answer, key)
        if shown == answer:
            return answer
        hint = ""
        if len(key) < 12:
            hint = (f" (a key of {len(key)} characters also matches ordinary words: a server that "
                    f"needs no key works with {self.api_key_env} unset)")
        raise _Failure(f"the answer from {self.url} holds the API key of ${self.api_key_env} "
                       f"(shown as ***), so it is not used{hint}: {shown}")

    def _status_text(self, response) -> str:
        code = response.status_code
        if 300 <= code < 400:
            target = response.headers.get("Location", "(no Location header)")[:MAX_BODY_CHARS]
            return (f"HTTP {code} from {self.url} redirects to {target}; redirects are not "
                    "followed, so that the API key never reaches another server: use the final "
                    "address as base_url")
        try:
            body = response.text[:MAX_BODY_CHARS]
        except Exception:  # noqa: BLE001 - the body only adds detail to the message
            body = ""
        return f"HTTP {code} from {self.url}: {body}"


# ----------------------------------------------------------------------------------------------
# helpers


def _bounded(text: str) -> str:
    """``text`` with whitespace collapsed, cut to :data:`MAX_MESSAGE_CHARS` (redact it first)."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."


def _import_openai():
    """The ``openai`` module, or an ImportError that says how to install the right one."""
    try:
        import openai   # optional: the extra lga[openai]
    except ImportError:
        openai = None
    if openai is None or not hasattr(openai, "DefaultHttpx2Client"):
        found = f" (found openai {getattr(openai, '__version__', '?')})" if openai is not None else ""
        raise ImportError('the "openai" anatomy backend needs the openai package, 3.51 or later'
                          f'{found}: pip install "lga[openai]"')
    return openai


def _origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http/https."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    try:  # the HTTP client sends an international domain name as punycode
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return scheme, host, port or _DEFAULT_PORTS.get(scheme)


_active_secrets: Counter[str] = Counter()  # the keys of the calls running now (any thread)
_secrets_lock = threading.Lock()
_installed: dict[str, Callable] = {}  # "ours": the record factory set, "previous": what it wraps


def _redacting_record_factory(previous: Callable) -> Callable:
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if str(record.name).split(".")[0] in _LIBRARY_LOGGERS:
            for secret in list(_active_secrets):
                redact_record(record, secret)
        return record

    return factory


@contextmanager
def _redacted_library_logs(secret: str | None) -> Iterator[None]:
    """While the block runs, redact ``secret`` from every record of the HTTP libraries' loggers.

    The redaction happens where records are made (a wrapper around the log-record factory), not
    in filters on the loggers: a filter is not inherited, and ``httpcore2.http11`` and its siblings
    are created during a process's first request, after filters would have been attached (run
    alone, the key in a status line reached the log that way). The factory is removed when the
    last call ends, unless other code has wrapped it since (then it stays, doing nothing).
    """
    if not secret:
        yield
        return
    with _secrets_lock:
        if not _active_secrets:
            previous = logging.getLogRecordFactory()
            _installed.update(previous=previous, ours=_redacting_record_factory(previous))
            logging.setLogRecordFactory(_installed["ours"])
        _active_secrets[secret] += 1
    try:
        yield
    finally:
        with _secrets_lock:
            _active_secrets[secret] -= 1
            if _active_secrets[secret] <= 0:
                del _active_secrets[secret]
            if not _active_secrets and logging.getLogRecordFactory() is _installed.get("ours"):
                logging.setLogRecordFactory(_installed["previous"])
