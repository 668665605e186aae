"""The OpenAI-compatible backend, end to end against a real HTTP server on 127.0.0.1.

The server (``http.server`` in a thread) plays a script of responses, one per request, and
records what it received, so each test checks both sides of the real HTTP exchange.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lga.anatomy.backends import AnatomyCache, generate_anatomy, make_backend
from lga.anatomy.openai_backend import OpenAIBackend, _retry_after_seconds
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


def completion(content) -> dict:
    return {"id": "c1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}


class ScriptedServer:
    """A chat-completions server; ``script`` holds one action per request (last one repeats).

    Actions: ``("ok", content)``, ``("status", code, headers, body)``, ``("sleep", seconds, content)``,
    ``("raw", bytes)``, ``("echo_auth", code)`` (answers with the Authorization header in the body).
    """

    def __init__(self):
        self.script: list[tuple] = [("ok", GOOD_ANSWER)]
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body})
                    n = len(owner.requests) - 1
                    action = owner.script[min(n, len(owner.script) - 1)]
                kind = action[0]
                if kind == "sleep":
                    time.sleep(action[1])
                    action = ("ok", action[2])
                    kind = "ok"
                if kind == "ok":
                    self._send(200, {}, json.dumps(completion(action[1])).encode())
                elif kind == "status":
                    self._send(action[1], action[2], action[3].encode())
                elif kind == "raw":
                    self._send(200, {}, action[1])
                elif kind == "echo_auth":
                    auth = self.headers.get("Authorization", "")
                    self._send(action[1], {}, json.dumps({"error": f"bad key {auth}"}).encode())

            def _send(self, code, headers, payload: bytes):
                try:
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture(autouse=True)
def no_real_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def backend(server, **kw) -> OpenAIBackend:
    options = dict(model="test-model", base_url=server.base_url, timeout_s=5.0, max_retries=3,
                   backoff_s=0.01, max_backoff_s=0.05)
    options.update(kw)
    return OpenAIBackend(**options)


def test_success_sends_a_chat_completions_request(server, tmp_path):
    report = generate_anatomy({"kick_ball": "kick ball"}, backend(server), tmp_path / "a.json")
    assert report.ok == ["kick_ball"] and not report.failed
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["model"] == "test-model"
    assert body["messages"] == PromptSpec().messages("kick ball")
    assert body["temperature"] == 0.0 and body["seed"] == 0
    assert "Authorization" not in req["headers"]  # no key set: allowed for local servers
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["classes"]["kick_ball"]["label"] == "kick ball"
    assert data["provenance"]["model"] == "test-model"
    assert data["provenance"]["method"] == "llm:openai"


def test_429_then_success_respects_retry_after(server, tmp_path):
    server.script = [("status", 429, {"Retry-After": "0"}, '{"error": "rate limited"}'),
                     ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, backoff_s=30.0), tmp_path / "a.json")
    assert report.ok == ["kick ball"]  # Retry-After: 0 overrode the 30 s backoff
    assert len(server.requests) == 2


def test_500_then_success(server, tmp_path, caplog):
    server.script = [("status", 500, {}, "internal error"), ("ok", GOOD_ANSWER)]
    with caplog.at_level(logging.WARNING, logger="lga.anatomy"):
        report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert report.ok == ["kick ball"]
    assert len(server.requests) == 2
    assert "HTTP 500" in caplog.text and "retry 1/3" in caplog.text


def test_persistent_5xx_gives_up_and_reports(server, tmp_path):
    server.script = [("status", 503, {}, "overloaded")]
    report = generate_anatomy(["kick ball"], backend(server, max_retries=2), tmp_path / "a.json")
    assert list(report.failed) == ["kick ball"]
    assert "gave up after 3 attempts" in report.failed["kick ball"]
    assert "HTTP 503" in report.failed["kick ball"]
    assert len(server.requests) == 3
    assert not (tmp_path / "a.json").exists()


def test_client_error_is_not_retried(server, tmp_path):
    server.script = [("status", 404, {}, '{"error": "model not found"}')]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json")
    assert "HTTP 404" in report.failed["kick ball"] and "model not found" in report.failed["kick ball"]
    assert len(server.requests) == 1


def test_timeout_then_success(server, tmp_path):
    server.script = [("sleep", 1.0, GOOD_ANSWER), ("ok", GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, timeout_s=0.2), tmp_path / "a.json")
    assert report.ok == ["kick ball"]
    assert len(server.requests) == 2


def test_timeout_every_time_is_reported(server, tmp_path):
    server.script = [("sleep", 1.0, GOOD_ANSWER)]
    report = generate_anatomy(["kick ball"], backend(server, timeout_s=0.2, max_retries=1),
                              tmp_path / "a.json")
    assert "timed out after 0.2 s" in report.failed["kick ball"]
    assert len(server.requests) == 2


def test_malformed_answer_is_re_asked_then_reported(server, tmp_path):
    server.script = [("ok", "Sure! The person kicks the ball. Hope this helps.")]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "a.json",
                              retries_on_parse_error=1)
    assert "unparsable answer after 2 attempt(s)" in report.failed["kick ball"]
    assert "The person kicks the ball" in report.failed["kick ball"]
    assert report.parse_errors == 2
    first, second = (r["body"] for r in server.requests)
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
    server.script = [("raw", json.dumps({"choices": []}).encode())]
    report = generate_anatomy(["kick ball"], backend(server), tmp_path / "b.json")
    assert "malformed chat-completions response" in report.failed["kick ball"]


def test_api_key_is_sent_but_never_logged_raised_or_shown(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LGA_TEST_KEY", SECRET)
    server.script = [("echo_auth", 500), ("echo_auth", 401)]
    b = backend(server, api_key_env="LGA_TEST_KEY")
    with caplog.at_level(logging.DEBUG):
        report = generate_anatomy(["kick ball"], b, tmp_path / "a.json")
    assert [r["headers"].get("Authorization") for r in server.requests] == [f"Bearer {SECRET}"] * 2
    reason = report.failed["kick ball"]
    assert "HTTP 401" in reason and "bad key Bearer ***" in reason  # the echoed key is redacted
    assert "HTTP 500" in caplog.text
    for text in (reason, caplog.text, report.summary(), repr(b), str(vars(b))):
        assert SECRET not in text
    # direct use raises nothing that shows the key either
    with pytest.raises(Exception) as info:
        b._complete({"model": "m", "messages": []}, "kick ball")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unreachable_server_is_reported(tmp_path):
    b = OpenAIBackend(model="m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01,
                      timeout_s=2.0)
    report = generate_anatomy(["kick ball"], b, tmp_path / "a.json")
    assert "gave up after 2 attempts" in report.failed["kick ball"]


def test_retry_after_parsing():
    assert _retry_after_seconds("3") == 3.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_constructor_validation_and_factory(server):
    with pytest.raises(ValueError, match="model"):
        OpenAIBackend(model="")
    with pytest.raises(ValueError, match="http"):
        OpenAIBackend(model="m", base_url="ftp://x")
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
    assert SECRET not in printed.out + printed.err
    assert [r["body"]["seed"] for r in server.requests] == [7, 7]
    assert sorted(AnatomyCache(out).class_names) == ["kick_ball", "throw"]
    # a second run finds everything cached and sends nothing
    assert main(argv) == 0
    assert len(server.requests) == 2
    assert "2 already cached" in capsys.readouterr().out
