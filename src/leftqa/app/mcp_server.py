"""The Assistant as Model Context Protocol tools (the official `mcp` SDK, 2.x): over stdio for `leftqa mcp`, and
over streamable HTTP at /mcp beside the chat for `leftqa serve` (with the same HTTP Basic credentials).

Two tools: `ask` answers with quoted sentences and their [n] markers as text, its citations as structured content;
`search` ranks passages. A question that cannot be asked comes back as a tool error with the CLI's message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from leftqa import __version__
from leftqa.errors import LeftQAError
from leftqa.records import Answer, Citation, Hit

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from leftqa.qa.assistant import Assistant

INSTRUCTIONS = (
    "leftqa answers questions about its corpus by quoting it verbatim: every sentence of an answer carries an [n] "
    "marker naming its citation. When the corpus does not cover a question it says so (abstained) instead of guessing; "
    "then do not present the closest passages as an answer."
)
MAX_HISTORY = 50


class AskOutput(BaseModel):
    """What `ask` returns as structured content."""

    question: str
    query: str = Field(description="what was searched (the question with the conversation's context for a follow-up)")
    answer: str = Field(description="quoted sentences with [n] markers, or the abstention message")
    abstained: bool
    reason: str
    confidence: float
    citations: list[Citation]


class SearchOutput(BaseModel):
    """What `search` returns as structured content (the `leftqa search --json` object)."""

    question: str
    mode: str
    hits: list[Hit]


def answer_text(a: Answer) -> str:
    """The answer as text: the quoted sentences with their [n] markers, then one line per citation."""
    if a.abstained:
        return a.answer
    lines = [a.answer, ""]
    for c in a.citations:
        page = f", p. {c.page}" if c.page else ""
        origin = f", from {c.source}" if c.source else ""
        lines.append(f"[{c.n}] {c.title} › {c.section}{page} ({c.doc_id}{origin})")
    return "\n".join(lines)


def build_server(assistant: "Assistant") -> MCPServer:
    """An MCP server whose `ask` and `search` tools answer from `assistant`."""
    server = MCPServer("leftqa", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    def ask(
        question: Annotated[str, Field(description="the question, in plain words")],
        history: Annotated[list[str], Field(description="the conversation's earlier questions, oldest first", max_length=MAX_HISTORY)] = [],  # noqa: B006
    ) -> Annotated[CallToolResult, AskOutput]:
        """Answer a question from the corpus with quoted sentences and numbered citations, or say it is not covered."""
        try:
            a = assistant.ask(question, history)
        except LeftQAError as exc:
            return _refused(exc)
        out = AskOutput(
            question=a.question, query=a.query, answer=a.answer, abstained=a.abstained, reason=a.reason,
            confidence=a.confidence, citations=list(a.citations),
        )  # fmt: skip
        return CallToolResult(content=[TextContent(type="text", text=answer_text(a))], structured_content=out.model_dump(mode="json"))

    @server.tool(annotations=read_only)
    def search(
        question: Annotated[str, Field(description="what to look for")],
        k: Annotated[int, Field(ge=1, le=100, description="how many passages")] = 5,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Rank the corpus passages most relevant to a question (no answer is composed)."""
        try:
            hits = assistant.search(question, k=k)
        except LeftQAError as exc:
            return _refused(exc)
        text = "\n\n".join(f"{h.rank}. {h.title} › {h.section} ({h.doc_id})\n{h.text}" for h in hits)
        out = SearchOutput(question=question, mode=assistant.settings.mode, hits=hits)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=out.model_dump(mode="json"))

    return server


def _refused(exc: LeftQAError) -> CallToolResult:
    """A tool error saying what was wrong, as the CLI says it."""
    return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)


def run_stdio(assistant: "Assistant") -> None:
    """Serve the tools over standard input and output until the client closes them."""
    build_server(assistant).run("stdio")



class HttpTransport:
    """An ASGI app serving the tools over streamable HTTP (stateless, JSON responses) on a running server.

    A mounted app gets no lifespan events, so the SDK's session manager is started on the first request, in the
    server's own event loop, and runs as long as the server does."""

    def __init__(self, assistant: "Assistant", credentials: tuple[str, str] | None, host: str) -> None:
        server = build_server(assistant)
        self.app = server.streamable_http_app(streamable_http_path=HTTP_PATH, stateless_http=True, json_response=True, host=host)
        self.manager = server.session_manager
        self.credentials = credentials
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None  # the session manager's, kept referenced while it runs

    async def _run(self) -> None:
        async with self.manager.run():
            assert self._ready is not None
            self._ready.set()
            await asyncio.Event().wait()  # until the server's loop ends

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        from starlette.responses import JSONResponse

        from leftqa.app.api import authorized

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if self.credentials is not None and not authorized(headers.get("authorization", ""), self.credentials):
            refusal = {"detail": "sign in with the user and password given to `leftqa serve --auth`"}
            await JSONResponse(refusal, 401, {"WWW-Authenticate": 'Basic realm="leftqa"'})(scope, receive, send)
            return
        if self._ready is None:
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()
        await self.app(scope, receive, send)


HTTP_PATH = "/mcp"


def mount_http(server: Any, assistant: "Assistant", credentials: tuple[str, str] | None, host: str) -> None:
    """Serve the tools at /mcp on the running FastAPI app `server` (streamable HTTP), behind `credentials` if given."""
    from starlette.routing import Route

    server.router.routes.append(Route(HTTP_PATH, HttpTransport(assistant, credentials, host), methods=["GET", "POST", "DELETE"]))
