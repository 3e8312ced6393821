"""`leftqa mcp` as a subprocess, spoken to in raw JSON-RPC over stdio as an MCP client would: initialize, tools/list,
tools/call ask and search, and a question that cannot be asked (a tool error, not a crash)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FAKE_MODEL, subprocess_env

from leftqa.app.mcp_server import answer_text
from leftqa.config import Settings

LEFTQA = str(Path(sys.executable).with_name("leftqa"))


class Peer:
    """A `leftqa mcp` child process and the JSON-RPC requests sent to it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.next_id = proc, 0

    def send(self, method: str, params: dict[str, Any] | None = None, notify: bool = False) -> dict[str, Any] | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, **({"params": params} if params is not None else {})}
        if not notify:
            self.next_id += 1
            message["id"] = self.next_id
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        if notify:
            return None
        while True:
            line = self.proc.stdout.readline()
            assert line, f"leftqa mcp closed its output; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                return reply


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    from conftest import TINY_CORPUS, build_fake_index, write_files

    root = tmp_path_factory.mktemp("mcp")
    settings = Settings(corpus_dir=write_files(root / "corpus", TINY_CORPUS), index_dir=root / "index", model=FAKE_MODEL, scorer="none")
    build_fake_index(settings)
    env = {**subprocess_env(), "LEFTQA_SCORER": "none"}
    proc = subprocess.Popen(
        [LEFTQA, "mcp", "--index", str(settings.index_dir), "--model", FAKE_MODEL],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root,
    )  # fmt: skip
    peer = Peer(proc)
    try:
        init = peer.send("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}})
        assert init is not None and init["result"]["serverInfo"]["name"] == "leftqa", init
        peer.send("notifications/initialized", notify=True)
        yield peer
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_tools_are_listed_with_schemas(peer: Peer) -> None:
    tools = {t["name"]: t for t in peer.send("tools/list")["result"]["tools"]}
    assert set(tools) == {"ask", "search"}
    assert tools["ask"]["inputSchema"]["required"] == ["question"] and "history" in tools["ask"]["inputSchema"]["properties"]
    assert "citations" in tools["ask"]["outputSchema"]["properties"]
    assert tools["ask"]["annotations"]["readOnlyHint"] is True


def test_ask_gives_marked_text_and_structured_citations(peer: Peer) -> None:
    result = peer.send("tools/call", {"name": "ask", "arguments": {"question": "Who led the Harbour Committee?"}})["result"]
    assert not result.get("isError")
    text = result["content"][0]["text"]
    cited = result["structuredContent"]
    assert "Marta Quell" in text and "[1]" in text and cited["abstained"] is False
    assert cited["citations"][0]["n"] == 1 and cited["citations"][0]["doc_id"] == "harbour-history.txt"
    assert text.startswith(cited["answer"])
    follow = peer.send("tools/call", {"name": "ask", "arguments": {"question": "When did it open?", "history": ["Who was the customs surgeon?"]}})
    assert follow["result"]["structuredContent"]["query"] != "When did it open?"


def test_search_ranks_passages(peer: Peer) -> None:
    result = peer.send("tools/call", {"name": "search", "arguments": {"question": "lighthouse keeper", "k": 2}})["result"]
    hits = result["structuredContent"]["hits"]
    assert len(hits) == 2 and hits[0]["rank"] == 1 and result["content"][0]["text"].startswith("1. ")


def test_a_question_that_cannot_be_asked_is_a_tool_error(peer: Peer) -> None:
    result = peer.send("tools/call", {"name": "ask", "arguments": {"question": "   "}})["result"]
    assert result["isError"] is True and result["content"][0]["text"] == "the question is empty; type a question about the corpus"
    assert peer.proc.poll() is None  # still serving


def test_answer_text_of_an_abstention_is_the_message() -> None:
    from leftqa.records import Answer

    a = Answer(question="q", query="q", abstained=True, answer="Not covered.", citations=(), passages=(), mode="hybrid")
    assert answer_text(a) == "Not covered."


def test_missing_index_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([LEFTQA, "mcp", "--index", str(tmp_path / "none")], capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith("leftqa: error:") and "Traceback" not in r.stderr


# --- streamable HTTP at /mcp beside the chat (`leftqa serve`) -------------------------------------------------------

MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


def _rpc(url: str, method: str, params: dict[str, Any], auth: tuple[str, str] | None = None) -> Any:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url + "mcp", json=body, headers=MCP_HEADERS, auth=auth, timeout=120)


def test_the_tools_over_http_beside_the_chat(fake_assistant: Any, fake_index: Settings) -> None:
    from conftest import served

    with served(fake_assistant, fake_index) as url:
        init = _rpc(url, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}})
        assert init.status_code == 200 and init.json()["result"]["serverInfo"]["name"] == "leftqa"
        tools = _rpc(url, "tools/list", {}).json()["result"]["tools"]
        assert {t["name"] for t in tools} == {"ask", "search"}
        result = _rpc(url, "tools/call", {"name": "ask", "arguments": {"question": "Who led the Harbour Committee?"}}).json()["result"]
        assert "Marta Quell" in result["content"][0]["text"] and result["structuredContent"]["citations"][0]["n"] == 1


def test_the_http_tools_need_the_servers_credentials(fake_assistant: Any, fake_index: Settings) -> None:
    from conftest import served

    with served(fake_assistant, fake_index, auth=("ann", "s3cret")) as url:
        assert _rpc(url, "tools/list", {}).status_code == 401
        assert _rpc(url, "tools/list", {}, auth=("ann", "wrong")).status_code == 401
        assert _rpc(url, "tools/list", {}, auth=("ann", "s3cret")).json()["result"]["tools"]
