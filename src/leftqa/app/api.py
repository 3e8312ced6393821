"""The JSON API under /api, served by `leftqa serve` beside the chat UI: ask, search, the Library, feedback.

A FastAPI sub-application (OpenAPI at /api/openapi.json, interactive docs at /api/docs) mounted on the FastAPI app
Gradio runs. It answers with the same objects as the CLI's `--json` and shares the UI's Library, so a change made
here and one made in the Library tab queue on the same lock. Bad input is a 4xx with `{"detail": "<the CLI's
message>"}` and one log line; with credentials every /api request needs HTTP Basic.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import tempfile
from pathlib import Path
from threading import BoundedSemaphore
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from leftqa import __version__
from leftqa.app.library import DocumentRow, Library, LibraryReport, Skipped
from leftqa.config import Settings
from leftqa.errors import (
    ConfigError, CorpusError, FeedbackError, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexMissingError,
    IndexWriteError, LeftQAError, ModelError, QuestionError, SourceError,
)  # fmt: skip
from leftqa.evals.feedback import Feedback, append_feedback
from leftqa.ingest.documents import MAX_PACKAGE_BYTES
from leftqa.records import Answer, Hit

if TYPE_CHECKING:
    from leftqa.qa.assistant import Assistant

log = logging.getLogger("leftqa.api")

Mode = Literal["hybrid", "bm25", "dense"]  # config.MODES; a test keeps the two the same
# A question: at least one character that is neither white space nor a control character (which are dropped), and
# no longer than the default limit (a server configured with a lower one says so with a 422).
QUESTION_CHARS: int = Settings.max_question_chars  # the dataclass field's default
Question = Annotated[str, Field(pattern=r"[^\s\x00-\x1f\x7f-\x9f]", max_length=QUESTION_CHARS)]
MAX_HISTORY = 50  # earlier questions one request may carry (each is re-read to resolve the follow-up)
CHUNK = 1 << 20

# Status of each kind of refusal: the caller's input (422), a state of the corpus or a build in progress (409), the
# server's index or model (503); any other LeftQAError is 400.
STATUS: tuple[tuple[type[LeftQAError], int], ...] = (
    (QuestionError, 422), (ConfigError, 422), (SourceError, 422), (CorpusError, 409), (IndexLockedError, 409),
    (IndexMissingError, 503), (IndexMismatchError, 503), (IndexCorruptError, 503), (IndexWriteError, 503),
    (ModelError, 503), (FeedbackError, 503),
)  # fmt: skip


class Problem(BaseModel):
    """Every refusal: one line saying what was wrong, as the CLI would say it."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (400, "Refused"), (401, "Credentials missing or wrong"), (404, "No such document"), (409, "Conflicts with the corpus or a build"),
        (413, "Upload too large"), (422, "Invalid input"), (503, "Index or model unavailable"),
    )
}  # fmt: skip


class AskRequest(BaseModel):
    """A question, the conversation's earlier questions (oldest first) and an optional retrieval mode."""

    question: Question
    history: list[Annotated[str, Field(max_length=QUESTION_CHARS)]] = Field(default_factory=list, max_length=MAX_HISTORY)
    mode: Mode | None = None


class SearchResult(BaseModel):
    """The `leftqa search --json` object."""

    question: str
    mode: str
    hits: list[Hit]


class Health(BaseModel):
    """The server is up, and what it answers from."""

    status: Literal["ok"]
    version: str
    documents: int
    passages: int
    model: str
    dense_index: str | None
    created: str | None


class UrlRequest(BaseModel):
    """A web page to download into the corpus (http or https)."""

    url: str


class LibraryChange(BaseModel):
    """What a Library change did, once the index is rebuilt and being served."""

    message: str
    added: list[str]
    replaced: list[str]
    unchanged: list[str]
    removed: str
    skipped: list[Skipped]
    documents: int
    passages: int


class FeedbackRequest(BaseModel):
    """A verdict on the answer to `question` (asked after `history`); the answer is recomputed to record it."""

    question: Question
    history: list[Annotated[str, Field(max_length=QUESTION_CHARS)]] = Field(default_factory=list, max_length=MAX_HISTORY)
    mode: Mode | None = None
    verdict: Literal["helpful", "wrong evidence"]


class FeedbackRecorded(BaseModel):
    """The feedback line was appended."""

    recorded: bool
    verdict: str
    question: str


class Refused(Exception):
    """A request refused with an HTTP status and a one-line message (raised by the handlers below)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def status_of(exc: LeftQAError) -> int:
    """The HTTP status of a typed error."""
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


def _refusal(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, detail)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line: `field: problem; field: problem`; a question refused as the CLI refuses it."""
    from leftqa.qa.assistant import clean_question

    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        message = f"{loc or 'request body'}: {err.get('msg', 'invalid')}"
        if loc in ("question", "q") and isinstance(err.get("input"), str):
            try:
                clean_question(err["input"], QUESTION_CHARS)
            except QuestionError as refused:
                message = str(refused)
        parts.append(message)
    return "; ".join(parts) or "invalid request"


def _library_change(report: LibraryReport) -> LibraryChange:
    """The API's view of a Library report; Refused when nothing could be done."""
    if not report.ok:
        if report.action == "remove_source" and not report.removed:  # the document exists: it cannot go (the last one)
            raise Refused(409, report.message)
        if report.action == "add_url" and not report.placed:  # the one page could not be added
            reasons = "; ".join(f"{s.file}: {s.reason}" for s in report.skipped)
            raise Refused(422, f"{report.message}{': ' + reasons if reasons else ''}")
        if report.placed or report.removed or not report.skipped:  # the build failed, or another one holds the index
            raise Refused(409, report.message)
    by = lambda *states: [p.dest for p in report.placed if p.status in states]  # noqa: E731
    return LibraryChange(
        message=report.message, added=by("added"), replaced=by("replaced", "updated"), unchanged=by("unchanged", "already in corpus"),
        removed=report.removed, skipped=list(report.skipped), documents=report.documents, passages=report.passages,
    )  # fmt: skip


def _save_upload(upload: UploadFile, folder: Path, i: int, limit: int) -> Path | None:
    """The upload copied to its own file under `folder`, or None when it is over `limit` bytes."""
    path = folder / str(i)
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > limit:
                return None
            out.write(chunk)
    return path


def build_api(assistant: "Assistant", settings: Settings, library: Library, answer_slots: int = 2) -> FastAPI:
    """The /api application for `assistant` (mount it with `mount_api`); `library` is the UI's, so changes queue together."""
    api = FastAPI(
        title="leftqa", version=__version__, docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", responses=ERRORS,
        description="Citation-backed extractive answers over the corpus, and the Library that changes it. Bad input is a 4xx "
        'with {"detail": "..."}; with `leftqa serve --auth` every route needs HTTP Basic.',
    )  # fmt: skip
    api.state.credentials = None
    slots = BoundedSemaphore(answer_slots)  # like the chat's queue: two answers at a time on two cores

    @api.middleware("http")
    async def basic_auth(request: Request, call_next: Any) -> Any:
        expected = request.app.state.credentials
        if expected is not None and not authorized(request.headers.get("authorization", ""), expected):
            return _refusal(request, 401, "sign in with the user and password given to `leftqa serve --auth`", {"WWW-Authenticate": 'Basic realm="leftqa"'})
        return await call_next(request)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _refusal(request, 422, _validation_message(exc))

    @api.exception_handler(LeftQAError)
    async def refused_typed(request: Request, exc: LeftQAError) -> JSONResponse:
        return _refusal(request, status_of(exc), str(exc))

    @api.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return _refusal(request, exc.status, exc.detail)

    @api.get("/health", response_model=Health, summary="Status and what the server answers from")
    def health() -> Health:
        index = assistant.index
        m = index.manifest
        return Health(
            status="ok", version=__version__, documents=len(m.documents), passages=index.size, model=m.model,
            dense_index=m.dense_index, created=m.created,
        )  # fmt: skip

    @api.post("/ask", response_model=Answer, summary="Answer a question (the `leftqa ask --json` object)")
    def ask(body: AskRequest) -> Answer:
        with slots:
            return assistant.ask(body.question, body.history, body.mode)

    @api.get("/search", response_model=SearchResult, summary="Rank passages (the `leftqa search --json` object)")
    def search(
        q: Annotated[str, Query(description="the question", pattern=r"[^\s\x00-\x1f\x7f-\x9f]", max_length=QUESTION_CHARS)],
        k: Annotated[int | None, Query(ge=1, le=1000, description="passages (default: the server's top_k)")] = None,
        mode: Annotated[Mode | None, Query(description="retrieval mode (default: the server's)")] = None,
    ) -> SearchResult:
        with slots:
            hits = assistant.search(q, mode, k)
        return SearchResult(question=q, mode=mode or settings.mode, hits=hits)

    @api.get("/documents", response_model=list[DocumentRow], summary="The documents of the index being served")
    def documents() -> list[DocumentRow]:
        return library.documents()

    @api.post("/documents", response_model=LibraryChange, summary="Add files to the corpus, then rebuild the index")
    def add_documents(
        files: Annotated[list[UploadFile], File(min_length=1, description="one or more .txt .md .html .htm .pdf .docx .jsonl files")],
        replace: Annotated[Literal["true", "false"], Form(description="true: overwrite corpus files of the same name")] = "false",
    ) -> LibraryChange:
        with tempfile.TemporaryDirectory(prefix="leftqa-upload-") as tmp:
            placed: list[tuple[Path, str]] = []
            too_large: list[str] = []
            for i, upload in enumerate(files):
                path = _save_upload(upload, Path(tmp), i, MAX_PACKAGE_BYTES)
                name = upload.filename or ""
                if path is None:
                    too_large.append(name)
                else:
                    placed.append((path, name))
            if too_large and not placed:
                raise Refused(413, f"{', '.join(too_large)}: over the {MAX_PACKAGE_BYTES / 1e6:.0f} MB upload limit, not copied")
            report = library.add_files(placed, replace=replace == "true")
        change = _library_change(report)
        limit = f"over the {MAX_PACKAGE_BYTES / 1e6:.0f} MB upload limit, not copied"
        return change.model_copy(update={"skipped": change.skipped + [Skipped(n, limit) for n in too_large]})

    @api.post("/documents/url", response_model=LibraryChange, summary="Download a web page into the corpus, then rebuild")
    def add_url(body: UrlRequest) -> LibraryChange:
        return _library_change(library.add_url(body.url))

    @api.delete("/documents/{doc_id:path}", response_model=LibraryChange, summary="Remove a document, then rebuild")
    def remove_document(doc_id: str) -> LibraryChange:
        if doc_id not in {r.doc_id for r in library.documents()}:
            raise Refused(404, f"{doc_id!r}: not a document of the index; GET /api/documents lists them")
        return _library_change(library.remove(doc_id))

    @api.post("/feedback", response_model=FeedbackRecorded, summary="Record a verdict on an answer")
    def feedback(body: FeedbackRequest) -> FeedbackRecorded:
        with slots:
            answer = assistant.ask(body.question, body.history, body.mode)
        append_feedback(settings.feedback_path, Feedback.build(answer, body.history, body.verdict))
        return FeedbackRecorded(recorded=True, verdict=body.verdict, question=answer.question)

    return api


def authorized(header: str, expected: tuple[str, str]) -> bool:
    """True when an Authorization header carries HTTP Basic `expected` (user, password)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = secrets.compare_digest(user.encode(), expected[0].encode())
    ok_password = secrets.compare_digest(password.encode(), expected[1].encode())
    return bool(sep) and ok_user and ok_password


def mount_api(server: Any, api: FastAPI, credentials: tuple[str, str] | None) -> None:
    """Serve `api` under /api on Gradio's FastAPI app `server`, requiring `credentials` (HTTP Basic) when given."""
    api.state.credentials = credentials
    server.mount("/api", api)

