"""The OpenAI-compatible backend, end to end against real HTTP servers on 127.0.0.1.

Each server (``http.server`` in a thread) plays a script of responses, one per request, and
records what it received, so each test checks both sides of the real HTTP exchange. The security
tests run a *pair* of servers (two ports, two origins): the first redirects or echoes the key, the
second must never hear from the client. The backend needs the optional ``openai`` package, which
the ``test`` extra installs (these tests are not skipped without it: they fail).
"""

from __future__ import annotations

import html
import json
import logging
import re
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lga.anatomy.backends import AnatomyCache, generate_anatomy, make_backend
from lga.anatomy.openai_backend import MAX_BODY_CHARS, MAX_MESSAGE_CHARS, OpenAIBackend, redact_secret
from lga.anatomy.prompts import PromptSpec

SECRET = "sk-test-THIS-IS-A-SECRET-1234567890"
GOOD_ANSWER = json.dumps({"steps": [
    {"subject": "person", "motion": "grips", "object": "ball",
     "description": "A person grips the ball with both hands."},
    {"subject": "person", "motion": "swings", "object": "leg",
     "description": "The person swings a leg back behind the ball."},
    {"subject": "person", "motion": "strikes", "object": "ball",
     "description": "The person's foot strikes the ball, sending it away."},
]})
FAST_RETRY = {"retry-after-ms": "5"}  # the client honours it: retries in tests take milliseconds


def completion(content) -> dict:
    return {"id": "c1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}


class ScriptedServer:
    """A chat-completions server; ``script`` holds one action per request (last one repeats).

    Actions: ``("ok", content)``, ``("status", code, headers, body)``, ``("sleep", seconds, content)``,
    ``("raw", bytes)``, ``("echo_auth", code)`` (answers with the Authorization header in the body),
    ``("reason", code, reason, headers)`` (a status line and headers of the test's choosing).
    ``requests`` records every request (any method); ``connections`` counts TCP connections.
    """

    def __init__(self):
        self.script: list[tuple] = [("ok", GOOD_ANSWER)]
        self.requests: list[dict] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.lock:
                    owner.requests.append({"method": self.command, "path": self.path,
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "raw": raw})
                    n = len(owner.requests) - 1
                    action = owner.script[min(n, len(owner.script) - 1)]
                kind = action[0]
                if kind == "sleep":
                    owner.stop.wait(action[1])
                    action, kind = ("ok", action[2]), "ok"
                if kind == "ok":
                    self._send(200, {}, json.dumps(completion(action[1])).encode())
                elif kind == "status":
                    self._send(action[1], action[2], action[3].encode())
                elif kind == "raw":
                    self._send(200, {}, action[1])
                elif kind == "echo_auth":
                    auth = self.headers.get("Authorization", "")
                    self._send(action[1], {}, json.dumps({"error": f"bad key {auth}"}).encode())
                elif kind == "reason":
                    self._send(action[1], action[3], b"{}", reason=action[2])

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

            def _send(self, code, headers, payload: bytes, reason=None):
                try:
                    self.send_response(code, reason)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                with owner.lock:
                    owner.connections += 1
                return True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.base_url = self.origin + "/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def stranger():
    """A second server on another port: another origin, which must never hear from the client."""
    with ScriptedServer() as s:
        yield s


@pytest.fixture(autouse=True)
def no_real_key(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
                 "OPENAI_BASE_URL", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)


def backend(server, **kw) -> OpenAIBackend:
    options = dict(model="test-model", base_url=server.base_url, timeout_s=5.0, max_retries=3)
    options.update(kw)
    return OpenAIBackend(**options)


def leaked(text: str, secret: str = SECRET) -> bool:
    """Whether ``text`` shows any prefix of ``secret`` of 4+ characters, as is or unescaped."""
    unicode_unescaped = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    views = [text, urllib.parse.unquote(text), html.unescape(text), unicode_unescaped]
    return any(secret[:4].casefold() in view.casefold() for view in views)


# ----------------------------------------------------------------------------------------------
# the exchange


def test_success_sends_a_chat_completions_request(server, tmp_path):
    report = generate_anatomy({"kick_ball": "kick ball"}, backend(server), tmp_path / "a.json")
    assert report.ok == ["kick_ball"] and not report.failed
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    body = json.loads(req["raw"])
    assert body["model"] == "test-model"
    assert body["messages"] == PromptSpec().messages("kick ball")
    assert body["temperature"] == 0.0 and body["seed"] == 0 and body["max_tokens"] == 512
    assert "authorization" not in req["headers"]  # no key set: allowed for local servers
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["classes"]["kick_ball"]["label"] == "kick ball"
    assert data["provenance"]["model"] == "test-model"
    assert data["provenance"]["method"] == "llm:openai"


def test_only_the_named_variable_gives_credentials(server, tmp_path, monkeypatch):
    """The openai client's own variables add no key, organisation or header to the request."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-key-from-the-default-variable")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-x")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-x")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-from-custom-headers")
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"), tmp_path / "a.json")
    generate_anatomy(["throw"], backend(server, api_key_env="LGA_UNSET_KEY"), tmp_path / "a.json")
    with_key, without_key = (r["headers"] for r in server.requests)
    assert with_key["authorization"] == f"Bearer {SECRET}"
    assert "authorization" not in without_key
    for headers in (with_key, without_key):
        assert "openai-organization" not in headers and "openai-project" not in headers


def test_429_retry_after_is_honoured_or_refused(server, tmp_path):
    server.script = [("status", 429, {"Retry-After": "0.01"}, '{"error": "rate limited"}'),
                     ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert report.ok == ["kick ball"] and len(server.requests) == 2
    # a Retry-After longer than the client will wait (2 minutes) fails at once, and says so
    server.script = [("status", 429, {"Retry-After": "3600"}, '{"error": "come back later"}')]
    report = generate_anatomy(["throw"], backend(server), tmp_path / "a.json")
    assert len(server.requests) == 3
    assert "HTTP 429" in report.failed["throw"] and "come back later" in report.failed["throw"]


def test_500_then_success(server, tmp_path, caplog):
    server.script = [("status", 500, FAST_RETRY, "internal error"), ("ok", GOOD_ANSWER)]
    with caplog.at_level(logging.WARNING, logger="lga.anatomy"):
        report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert report.ok == ["kick ball"]
    assert len(server.requests) == 2
    assert "HTTP 500" in caplog.text and "attempt 1 of 4" in caplog.text


def test_persistent_5xx_gives_up_and_reports(server, tmp_path):
    server.script = [("status", 503, FAST_RETRY, "overloaded")]
    report = generate_anatomy(["kick ball"], backend(server, max_retries=2), tmp_path / "a.json")
    assert list(report.failed) == ["kick ball"]
    assert "gave up after 3 attempts" in report.failed["kick ball"]
    assert "HTTP 503" in report.failed["kick ball"] and "overloaded" in report.failed["kick ball"]
    assert len(server.requests) == 3
    assert not (tmp_path / "a.json").exists()


def test_client_error_is_not_retried(server, tmp_path):
    server.script = [("status", 404, {}, '{"error": "model not found"}')]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert "HTTP 404" in report.failed["kick ball"] and "model not found" in report.failed["kick ball"]
    assert len(server.requests) == 1


def test_timeout_then_success(server, tmp_path):
    server.script = [("sleep", 2.0, GOOD_ANSWER), ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, timeout_s=0.2), tmp_path / "a.json")
    assert report.ok == ["kick ball"]
    assert len(server.requests) == 2


def test_timeout_every_time_is_reported(server, tmp_path):
    server.script = [("sleep", 2.0, GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, timeout_s=0.2, max_retries=1),
                              tmp_path / "a.json")
    assert "timed out after 0.2 s" in report.failed["kick ball"]
    assert "gave up after 2 attempts" in report.failed["kick ball"]
    assert len(server.requests) == 2


def test_malformed_answer_is_re_asked_then_reported(server, tmp_path):
    server.script = [("ok", "Sure! The person kicks the ball. Hope this helps.")]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json",
                              retries_on_parse_error=1)
    assert "unparsable answer after 2 attempt(s)" in report.failed["kick ball"]
    assert "The person kicks the ball" in report.failed["kick ball"]
    assert report.parse_errors == 2
    first, second = (json.loads(r["raw"]) for r in server.requests)
    assert (first["temperature"], first["seed"]) == (0.0, 0)
    assert (second["temperature"], second["seed"]) == (0.7, 1)  # the re-ask samples


def test_malformed_answer_then_good_answer(server, tmp_path):
    server.script = [("ok", "```json\n{\"steps\": [\n```"), ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert report.ok == ["kick ball"] and report.parse_errors == 1


def test_malformed_http_body_is_reported(server, tmp_path):
    server.script = [("raw", b"<html>502 Bad Gateway</html>")]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert "malformed chat-completions response" in report.failed["kick ball"]
    assert "502 Bad Gateway" in report.failed["kick ball"]
    server.script = [("raw", json.dumps({"choices": []}).encode())]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "b.json")
    assert "malformed chat-completions response" in report.failed["kick ball"]
    server.script = [("raw", json.dumps(completion({"steps": []})).encode())]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "c.json")
    assert "has no text content (got dict)" in report.failed["kick ball"]


def test_one_hostile_answer_fails_only_its_class(server, tmp_path):
    """A 5000-digit integer (more than Python's int reads) in one HTTP body, or in one model
    answer, fails that class with a message; the run goes on with the others (issue 15, item 6)."""
    huge = "9" * 5000
    body = json.dumps(completion(GOOD_ANSWER))[:-1] + f', "usage": {{"prompt_tokens": {huge}}}}}'
    labels = ["kick ball", "throw", "catch", "wave", "jump"]
    server.script = [("ok", GOOD_ANSWER), ("raw", body.encode()),
                     ("ok", GOOD_ANSWER.replace('"ball"', huge, 1)), ("ok", GOOD_ANSWER)]
    report = generate_anatomy(labels, backend(server, max_retries=0), tmp_path / "a.json",
                              retries_on_parse_error=0)
    assert report.ok == ["kick ball", "wave", "jump"] and list(report.failed) == ["throw", "catch"]
    assert "malformed chat-completions response" in report.failed["throw"]
    assert "4300 digits" in report.failed["throw"] and len(report.failed["throw"]) <= MAX_MESSAGE_CHARS
    assert "the answer holds a number of more than 4300 digits" in report.failed["catch"]
    assert len(server.requests) == len(labels)
    assert sorted(AnatomyCache(tmp_path / "a.json").class_names) == ["jump", "kick ball", "wave"]


def test_unreachable_server_is_reported(tmp_path):
    b = OpenAIBackend(model="m", base_url="http://127.0.0.1:9/v1", max_retries=1, timeout_s=2.0)
    report = generate_anatomy(["kick ball"], b, tmp_path / "a.json")
    assert "gave up after 2 attempts" in report.failed["kick ball"]
    assert "cannot reach http://127.0.0.1:9/v1/chat/completions" in report.failed["kick ball"]


def test_constructor_validation_and_factory(server):
    with pytest.raises(ValueError, match="model"):
        OpenAIBackend(model="")
    with pytest.raises(ValueError, match="http"):
        OpenAIBackend(model="m", base_url="ftp://x")
    with pytest.raises(ValueError, match="host"):
        OpenAIBackend(model="m", base_url="http:///v1")
    b = make_backend("openai", model="m", base_url=server.base_url + "/")
    assert isinstance(b, OpenAIBackend) and b.url == server.base_url + "/chat/completions"


def test_cli_with_openai_backend(server, tmp_path, monkeypatch, capsys):
    from lga.anatomy.cli import main

    monkeypatch.setenv("MY_KEY", SECRET)
    labels = tmp_path / "labels.txt"
    labels.write_text("kick_ball\tkick ball\n# a comment\n\nthrow\n")
    out = tmp_path / "out.json"
    argv = ["anatomy", "--labels", str(labels), "--backend", "openai", "--model", "test-model",
            "--base-url", server.base_url, "--api-key-env", "MY_KEY", "--out", str(out),
            "--no-progress", "--seed", "7"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "2/2 classes covered" in printed.out
    assert not leaked(printed.out + printed.err)
    assert [json.loads(r["raw"])["seed"] for r in server.requests] == [7, 7]
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {SECRET}"] * 2
    assert sorted(AnatomyCache(out).class_names) == ["kick_ball", "throw"]
    # a second run finds everything cached and sends nothing
    assert main(argv) == 0
    assert len(server.requests) == 2
    assert "2 already cached" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# the key goes to base_url's origin and nowhere else (issue 15, item 2)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_key_never_reaches_redirect_target(server, stranger, tmp_path, monkeypatch, caplog, code):
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    target = stranger.base_url + "/chat/completions"
    server.script = [("status", code, {"Location": target}, "")]
    with caplog.at_level(logging.DEBUG):
        report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"),
                                  tmp_path / "a.json")
    assert stranger.connections == 0 and stranger.requests == []  # not one byte went there
    assert len(server.requests) == 1  # the first server got the key, once: a redirect is not retried
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    reason = report.failed["kick ball"]
    assert f"HTTP {code}" in reason and f"redirects to {target}" in reason
    assert "not followed" in reason
    assert not leaked(reason) and not leaked(caplog.text)


def test_same_origin_redirect_is_not_followed_either(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("status", 307, {"Location": "/v2/chat/completions"}, ""), ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"),
                              tmp_path / "a.json")
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"]
    assert "HTTP 307" in report.failed["kick ball"] and "use the final address" in report.failed["kick ball"]


def test_other_origin_is_refused_even_if_redirects_were_followed(server, stranger, tmp_path,
                                                                  monkeypatch):
    """Were the client ever to follow redirects (a changed default), the origin check still holds."""
    import openai

    real = openai.DefaultHttpx2Client

    def following(**kwargs):
        kwargs["follow_redirects"] = True
        return real(**kwargs)

    monkeypatch.setattr(openai, "DefaultHttpx2Client", following)
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("status", 307, {"Location": stranger.base_url + "/chat/completions"}, "")]
    report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"),
                              tmp_path / "a.json")
    assert stranger.connections == 0 and stranger.requests == []
    assert "refused to send a request to" in report.failed["kick ball"]
    assert "another origin than base_url" in report.failed["kick ball"]


# ----------------------------------------------------------------------------------------------
# the key never shows in an error or a log, even when a server echoes it (issue 15, item 2)

ECHOES = {
    "plain": lambda key: f'{{"error": "invalid key {key}"}}',
    "near the old 300-character cut": lambda key: "x" * 290 + key + "y" * 400,
    "near the message cut": lambda key: "x" * (MAX_MESSAGE_CHARS - 90) + key + "y" * 400,
    "near the body cut": lambda key: "x" * (MAX_BODY_CHARS - 12) + key,
    "json-escaped": lambda key: json.dumps({"error": key.replace("-", "\\u002d")}),
    "json-escaped, every character": lambda key: "".join(f"\\u{ord(c):04x}" for c in key),
    "escaped twice": lambda key: key.replace("-", "\\\\u002d"),
    "percent-encoded": lambda key: "key=" + urllib.parse.quote(key, safe="").replace("-", "%2D"),
    "html entities": lambda key: key.replace("-", "&#45;").replace("T", "&#x54;"),
    "upper case": lambda key: key.upper(),
    "partial, masked": lambda key: key[:12] + "*" * 10 + key[-4:],
}


@pytest.mark.parametrize("form", list(ECHOES))
def test_key_echoed_in_error_body_is_redacted(server, tmp_path, monkeypatch, caplog, form):
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("status", 401, {}, ECHOES[form](SECRET))]
    with caplog.at_level(logging.DEBUG):
        report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"),
                                  tmp_path / "a.json")
    reason = report.failed["kick ball"]
    assert "HTTP 401" in reason and len(reason) <= MAX_MESSAGE_CHARS
    for text in (reason, report.summary(), caplog.text):
        assert not leaked(text), (form, text[-400:])


def test_key_cut_by_a_length_limit_at_any_place_is_redacted(server, monkeypatch, caplog):
    """The server's text is cut twice (the body to MAX_BODY_CHARS, the message to
    MAX_MESSAGE_CHARS): a key echoed across either cut, plain or JSON-escaped, cut after each of
    its characters, leaves no 4 characters of itself in the message or the log."""
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    escaped = SECRET.replace("-", "\\u002d")
    bodies = [pad * (MAX_BODY_CHARS - n) + key + "y" * 50  # across the body cut
              for key in (SECRET, escaped) for n in range(1, len(key) + 1) for pad in "x "]
    bodies += ["x" * k + key + "y" * 50  # across the message cut (the text before the body varies)
               for key in (SECRET, escaped) for k in range(MAX_MESSAGE_CHARS - 130, MAX_MESSAGE_CHARS)]
    server.script = [("status", 401, {}, body) for body in bodies]
    labels = [f"c{i}" for i in range(len(bodies))]
    with caplog.at_level(logging.DEBUG):
        errors = backend(server, api_key_env="LGA_TEST_KEY").generate(labels, PromptSpec())
    assert len(server.requests) == len(bodies)
    cut_inside_key = 0
    for label, body in zip(labels, bodies):
        reason = str(errors[label])
        assert "HTTP 401" in reason and len(reason) <= MAX_MESSAGE_CHARS
        assert not leaked(reason), (body[-80:], reason[-80:])
        cut_inside_key += reason.endswith("***") or reason.endswith("***...")
    assert cut_inside_key > 20  # the sweep did cut the key itself, many times
    assert not leaked(caplog.text)


def test_key_in_status_line_and_headers_never_reaches_logs(server, tmp_path, monkeypatch, caplog):
    """httpx2 logs the status line at INFO, httpcore2 and openai log response headers at DEBUG."""
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("reason", 500, f"Bad key {SECRET}",
                      {"x-request-id": SECRET, "retry-after-ms": "5", "x-echo": f"Bearer {SECRET}"})]
    factory = logging.getLogRecordFactory()
    with caplog.at_level(logging.DEBUG):
        report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY",
                                                         max_retries=1), tmp_path / "a.json")
    assert len(server.requests) == 2 and "HTTP 500" in report.failed["kick ball"]
    assert "httpx2" in caplog.text  # the libraries did log the exchange ...
    assert not leaked(caplog.text)  # ... with the key redacted
    assert "***" in caplog.text
    # and the redaction is gone afterwards: other code's logging is left as it was
    assert logging.getLogRecordFactory() is factory
    assert not any(f for name in ("openai", "httpx2") for f in logging.getLogger(name).filters)


FRESH_PROCESS = """
import logging, os, sys
sys.path.insert(0, {tests!r})
from test_anatomy_openai import SECRET, ScriptedServer
from lga.anatomy.openai_backend import OpenAIBackend
from lga.anatomy.prompts import PromptSpec

logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s: %(message)s")
os.environ["LGA_TEST_KEY"] = SECRET
with ScriptedServer() as server:
    server.script = [("reason", 500, "Bad key " + SECRET, {{"x-request-id": SECRET, "retry-after-ms": "5"}})]
    backend = OpenAIBackend(model="m", base_url=server.base_url, api_key_env="LGA_TEST_KEY", max_retries=1)
    print("RESULT", backend.generate(["kick ball"], PromptSpec()))
"""


def test_key_never_reaches_logs_of_a_first_request(tmp_path):
    """In a new process the ``httpcore2.http11`` logger is created during the first request, so a
    filter attached to the existing loggers before it missed it (the key in the status line and
    headers reached the DEBUG log). Run in a fresh interpreter: in this one it exists already."""
    script = tmp_path / "first_request.py"
    script.write_text(FRESH_PROCESS.format(tests=str(Path(__file__).parent)))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[2])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "RESULT" in run.stdout and "HTTP 500" in run.stdout
    assert "httpcore2.http11: receive_response_headers" in run.stdout  # the new logger did log
    assert not leaked(run.stdout + run.stderr), run.stdout[-2000:]
    assert "Bad key ***" in run.stdout


def test_api_key_is_sent_but_never_logged_raised_or_shown(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("echo_auth", 500), ("echo_auth", 401)]
    b = backend(server, api_key_env="LGA_TEST_KEY")
    with caplog.at_level(logging.DEBUG):
        report = generate_anatomy(["kick ball"], b, tmp_path / "a.json")
    assert [r["headers"].get("authorization") for r in server.requests] == [f"Bearer {SECRET}"] * 2
    reason = report.failed["kick ball"]
    assert "HTTP 401" in reason and "bad key Bearer ***" in reason  # the echoed key is redacted
    assert "HTTP 500" in caplog.text
    for text in (reason, caplog.text, report.summary(), repr(b), str(vars(b))):
        assert not leaked(text)
    # direct use: the error carries no chained exception (which would hold the request headers)
    server.script = [("echo_auth", 401)]
    (error,) = b.generate(["kick ball"], PromptSpec()).values()
    assert not leaked(str(error)) and not leaked(repr(error))
    assert error.__cause__ is None and error.__context__ is None


def test_redact_secret_forms():
    key = "sk-abcDEF123456"
    assert redact_secret(f"a {key} b {key}", key) == "a *** b ***"
    assert redact_secret("sk\\u002dabcDEF123456!", key) == "***!"
    assert redact_secret("sk%2dabcdef123456", key) == "***"  # hex and letters in any case
    assert redact_secret("x sk-abcDEF12", key) == "x ***"  # cut inside the key by someone else
    assert redact_secret("x sk-a", key) == "x ***"  # a cut prefix of 4 characters
    assert redact_secret("sk-abcDEF1*****3456", key) == "***" + "*****3456"  # 8+ characters anywhere
    assert redact_secret("sk-a is short", key) == "sk-a is short"  # 4 characters inside: kept
    for cut in ("sk\\u002dabc\\u0", "sk\\u002dabc\\", "sk\\\\u002dabc\\\\u00", "sk%2Dabc%2",
                "sk&#45;abc&#4", "sk&#x2d;abc&#x", "sk-abc&"):  # cut inside an escape after the key
        assert redact_secret("x " + cut, key) == "x ***", cut
    assert redact_secret("no key here", None) == "no key here"
    assert redact_secret("\\uZZZZ &#99999999; %G0", key) == "\\uZZZZ &#99999999; %G0"


def test_missing_or_old_openai_package_is_a_clear_error(monkeypatch):
    import sys
    import types

    b = OpenAIBackend(model="m")  # building one needs no package: the book prints one
    assert repr(b) == ("OpenAIBackend(model='m', base_url='https://api.openai.com/v1', "
                       "api_key_env='OPENAI_API_KEY')")
    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
    with pytest.raises(ImportError, match=r'3.51 or later: pip install "lga\[openai\]"'):
        b.generate(["kick ball"], PromptSpec())
    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(__version__="1.2.3"))
    with pytest.raises(ImportError, match=r"\(found openai 1.2.3\)"):
        b.generate(["kick ball"], PromptSpec())


def test_origin_of_an_international_domain_name():
    from lga.anatomy.openai_backend import _origin

    assert _origin("https://b\u00fccher.example/v1") == _origin("https://xn--bcher-kva.example:443/x")
    assert _origin("http://127.0.0.1:8000/v1") != _origin("http://127.0.0.1:8001/v1")
    assert _origin("http://h/v1") != _origin("https://h/v1")


# ----------------------------------------------------------------------------------------------
# the key in a successful answer (issue 23, item 3)

def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


SPELLINGS = {
    "plain": lambda key: key,
    "full-width": _full_width,
    "soft hyphens": lambda key: "\u00ad".join(key),
    "zero-width spaces and joiners": lambda key: "".join(c + ("\u200b", "\u200d", "\u2060")[i % 3]
                                                         for i, c in enumerate(key)),
    "upper case, non-breaking hyphens": lambda key: key.upper().replace("-", "\u2011"),
    "combining marks": lambda key: "".join(c + "\u0332" for c in key),
    "mathematical letters, a BOM inside": lambda key: "\ufeff".join(
        chr(0x1D41A + ord(c) - ord("a")) if "a" <= c <= "z" else c for c in key[:3]) + key[3:],
    "escaped in the text": lambda key: key.replace("-", "\\u002d"),
    "full-width, soft hyphens, escaped": lambda key: "\u00ad".join(_full_width(key)).replace(
        "\uff0d", "\\uff0d"),
}


def folded_view(text: str) -> str:
    """``text`` as a reader's eye takes it: NFKC, invisible characters and marks dropped, dashes as -."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Mn", "Me"))
    return re.sub("[\u2010-\u2015\u2212]", "-", text)


def leaked_in_any_spelling(text: str) -> bool:
    return leaked(text) or leaked(folded_view(text)) or leaked(folded_view(
        re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)))


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_redact_secret_sees_unicode_spellings(spelling):
    spelled = SPELLINGS[spelling](SECRET)
    assert leaked_in_any_spelling(spelled)  # the test's own eye sees the key ...
    assert redact_secret(f"a {spelled} b", SECRET) == "a *** b"  # ... and so does the redaction
    assert redact_secret(f"x {spelled[:len(spelled) // 2]}", SECRET) == "x ***"  # cut inside it


def test_redact_secret_leaves_other_unicode_text_alone():
    for text in ("caf\u00e9 \u2014 na\u00efve \uff08full-width\uff09", "a\u00adb\u200bc", "\U0001D41A\u0332",
                 "sk\u2011test is not the key", "\ufeffthe person grips the ball"):
        assert redact_secret(text, SECRET) == text


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("parses", [False, True], ids=["unparsable", "parses"])
def test_key_in_a_200_answer_reaches_no_terminal_log_or_file(server, tmp_path, monkeypatch, capsys,
                                                              caplog, spelling, parses):
    """A server that answers 200 with the key in the text: the key is in no printed line, no log
    record, no anatomy file and no quality report, whether the answer parses or not."""
    from lga.anatomy.cli import main

    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    spelled = SPELLINGS[spelling](SECRET)
    if parses:
        answer = GOOD_ANSWER.replace("A person grips the ball with both hands.",
                                     f"The person reads the key {spelled} aloud.")
        assert spelled in answer and json.loads(answer)  # (a JSON escape in it is read as its character)
    else:
        answer = f"I cannot; your key is {spelled}"
    server.script = [("ok", answer)]
    labels = tmp_path / "labels.txt"
    labels.write_text("kick ball\n")
    out = tmp_path / "out.json"
    with caplog.at_level(logging.DEBUG):
        code = main(["--labels", str(labels), "--backend", "openai", "--model", "m",
                     "--base-url", server.base_url, "--api-key-env", "LGA_TEST_KEY", "--out", str(out),
                     "--no-progress", "--retries", "1"])
    printed = capsys.readouterr()
    written = out.read_text(encoding="utf-8") if out.exists() else ""
    for where, text in (("stdout", printed.out), ("stderr", printed.err), ("log", caplog.text),
                        ("anatomy file", written)):
        assert not leaked_in_any_spelling(text), (spelling, where, text[-600:])
    assert code == 1 and len(server.requests) == 1  # not asked again: the server is the problem
    assert "holds the API key of $LGA_TEST_KEY (shown as ***), so it is not used" in printed.out


def test_short_key_that_matches_words_says_how_to_go_without(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LGA_TEST_KEY", "EMPTY")  # what vLLM's examples put in OPENAI_API_KEY
    server.script = [("ok", GOOD_ANSWER.replace("with both hands", "with empty hands"))]
    report = generate_anatomy(["kick ball"], backend(server, api_key_env="LGA_TEST_KEY"), tmp_path / "a.json")
    reason = report.failed["kick ball"]
    assert "a key of 5 characters also matches ordinary words" in reason
    assert "works with LGA_TEST_KEY unset" in reason and "with *** hands" in reason
