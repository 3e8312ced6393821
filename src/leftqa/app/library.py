"""The Library: list, add and remove corpus documents from the running server, one change at a time.

Every change runs what `leftqa add` runs (copy into the corpus, then the incremental build), then switches the
Assistant to the new index; questions asked meanwhile are answered from the old one. Changes queue on one lock,
so two uploads at once never interleave (and a build started from the command line is reported, not waited for).
The UI's Library tab and the `/documents`, `/add_sources`, `/add_url`, `/remove_source` endpoints call these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any, Callable, Sequence

from leftqa.errors import LeftQAError, SourceError

if TYPE_CHECKING:
    from leftqa.index.builder import BuildReport
    from leftqa.index.store import SkippedEntry
    from leftqa.qa.assistant import Assistant

# progress(fraction, message): how far the change is, for a progress bar.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class DocumentRow:
    """One document of the served index, as the Library lists it."""

    doc_id: str  # path relative to the corpus folder; what `remove` takes
    title: str
    file: str
    format: str
    passages: int
    source: str  # the URL of a downloaded page, else ""
    added: str  # when the file was placed in the corpus (its modification time, UTC), "" if it is gone


@dataclass(frozen=True)
class Placed:
    """A file placed in the corpus (or found there already): as uploaded or downloaded, where it is, and how."""

    source: str  # the name as uploaded, or the URL
    dest: str  # path relative to the corpus folder (the doc_id)
    status: str  # added | replaced | updated | unchanged | already in corpus


@dataclass(frozen=True)
class Skipped:
    """A file that was not added, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class LibraryReport:
    """What one Library change did: files placed, files skipped with reasons, and the rebuild."""

    action: str  # add_sources | add_url | remove_source
    ok: bool  # False when nothing was changed (every item refused, or the build failed)
    message: str  # one line for people
    placed: tuple[Placed, ...] = ()
    removed: str = ""
    skipped: tuple[Skipped, ...] = ()
    build: dict[str, Any] | None = None  # the BuildReport as a dict (its `path` called `index`)
    documents: int = 0  # documents in the index now served
    passages: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the API's answer)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LibraryReport":
        """Inverse of `to_dict`."""
        placed = tuple(Placed(**p) for p in data.get("placed") or ())
        skipped = tuple(Skipped(**s) for s in data.get("skipped") or ())
        return cls(**{**data, "placed": placed, "skipped": skipped})


def _quiet(_fraction: float, _message: str) -> None:
    return None


class Library:
    """Changes to the corpus of one Assistant's index, serialised; reads are lock-free."""

    def __init__(self, assistant: "Assistant") -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        self._lock = Lock()

    @property
    def corpus_dir(self) -> Path:
        return Path(self.settings.corpus_dir)

    def documents(self) -> list[DocumentRow]:
        """The documents of the index being served (what the chat answers from), in corpus order."""
        return [
            DocumentRow(
                doc_id=d.doc_id,
                title=d.title,
                file=Path(d.doc_id).name,
                format=Path(d.doc_id).suffix.lower().lstrip("."),
                passages=d.passages,
                source=d.source,
                added=self._added(d.doc_id),
            )
            for d in self.assistant.index.manifest.documents
        ]

    def _added(self, doc_id: str) -> str:
        try:
            mtime = (self.corpus_dir / doc_id).stat().st_mtime
        except OSError:
            return ""
        return datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds")

    def add_files(self, files: Sequence[tuple[str | Path, str]], replace: bool = False, progress: Progress = _quiet) -> LibraryReport:
        """Copy uploaded files, given as (path on disk, name as uploaded), into the corpus, then rebuild."""
        from leftqa.ingest.sources import place_upload

        def place() -> tuple[list[Placed], list[Skipped]]:
            placed, skipped = [], []
            for i, (path, name) in enumerate(files):
                progress(0.05 + 0.15 * i / max(1, len(files)), f"copying {name}")
                dest = ""
                try:
                    a = place_upload(Path(path), name, self.corpus_dir, replace=replace)
                    dest = a.dest
                    self._readable(a.dest, a.status)
                    placed.append(Placed(str(name), a.dest, a.status))
                except SourceError as exc:
                    skipped.append(_skipped(str(name), str(exc), Path(str(name)).name, dest))
            return placed, skipped

        if not files:
            return self._report("add_sources", False, "no files were chosen; choose one or more files, then press Add files", [], "", [], None)
        return self._change("add_sources", place, progress)

    def add_url(self, url: str, timeout: float = 30.0, progress: Progress = _quiet) -> LibraryReport:
        """Download an http(s) page into corpus/web/ (as `leftqa add URL` does), then rebuild."""
        from leftqa.ingest.sources import add_sources

        url = (url or "").strip() if isinstance(url, str) else ""
        if not url:
            return self._report("add_url", False, "enter a web address (http or https) first", [], "", [], None)
        if not url.lower().startswith(("http://", "https://")):
            return self._report("add_url", False, f"nothing was added: {url} is not a web address; only http and https pages can be added", [], "", [], None)

        def place() -> tuple[list[Placed], list[Skipped]]:
            progress(0.05, f"downloading {url}")
            result = add_sources([url], self.corpus_dir, replace=False, timeout=timeout)
            placed, skipped = [], [_skipped(url, w) for w in result.warnings]
            for a in result.added:
                try:
                    self._readable(a.dest, a.status)
                    placed.append(Placed(a.source, a.dest, a.status))
                except SourceError as exc:
                    skipped.append(_skipped(url, str(exc), a.dest))
            return placed, skipped

        return self._change("add_url", place, progress)

    def remove(self, doc_id: str, progress: Progress = _quiet) -> LibraryReport:
        """Delete a document's file from the corpus, then rebuild; the chat stops quoting it once the build is in."""
        from leftqa.ingest.sources import remove_source

        doc_id = doc_id.strip() if isinstance(doc_id, str) else ""
        if not doc_id:
            return self._report("remove_source", False, "no document was chosen; choose one in the list, then press Remove", [], "", [], None)
        removed: list[str] = []
        refused: list[str] = []

        def place() -> tuple[list[Placed], list[Skipped]]:
            progress(0.05, f"removing {doc_id}")
            try:
                removed.append(remove_source(doc_id, self.corpus_dir))
            except LeftQAError as exc:
                refused.append(str(exc))
            return [], []

        report = self._change("remove_source", place, progress, removed)
        return replace(report, ok=False, message=f"nothing was removed: {refused[0]}") if refused else report

    def _readable(self, dest: str, status: str) -> None:
        """SourceError when the corpus reader cannot use a file just placed; a new file is then taken out again, so
        the corpus keeps only documents the index can hold."""
        from leftqa.ingest.corpus import read_document, sidecar_path

        path = self.corpus_dir / dest
        try:
            read_document(path, dest)
        except SourceError:
            if status == "added":
                path.unlink(missing_ok=True)
                sidecar_path(path).unlink(missing_ok=True)
            raise

    def _change(
        self,
        action: str,
        place: Callable[[], tuple[list[Placed], list[Skipped]]],
        progress: Progress,
        removed: list[str] | None = None,
    ) -> LibraryReport:
        """Run one change under the lock: place files, rebuild if anything changed, switch the chat over."""
        from leftqa.index.builder import build_index

        if not self._lock.acquire(blocking=False):
            progress(0.0, "waiting for the previous library change to finish")
            self._lock.acquire()
        try:
            placed, skipped = place()
            removed_id = removed[0] if removed else ""
            changed = [p for p in placed if p.status not in ("unchanged", "already in corpus")]
            if not changed and not removed_id:
                message = "nothing was added" if skipped else "nothing changed: the files are already in the library"
                return self._report(action, bool(placed) and not skipped, message, placed, removed_id, skipped, None)
            progress(0.2, "updating the index")
            steps = iter((0.4, 0.6, 0.75, 0.85))

            def log(message: str) -> None:
                progress(next(steps, 0.85), message)

            try:
                build = build_index(self.settings, self.assistant.embedder, log=log)
            except LeftQAError as exc:
                return self._report(action, False, f"the index was not updated (the chat keeps the previous one): {exc}", placed, removed_id, skipped, None)
            names = {p.dest for p in placed}
            reasons = {s.doc_id: s.reason for s in _manifest_skipped(self.settings.index_dir)}
            skipped += [_skipped(name, reasons[name]) for name in sorted(names) if name in reasons]
            progress(0.9, "switching the chat to the new index")
            try:
                self.assistant.reload()
            except LeftQAError as exc:
                return self._report(action, False, f"the index was rebuilt but not loaded (the chat keeps the previous one): {exc}", placed, removed_id, skipped, build)
            progress(1.0, "done")
            return self._report(action, True, build.summary(), placed, removed_id, skipped, build)
        finally:
            self._lock.release()

    def _report(
        self, action: str, ok: bool, message: str, placed: list[Placed], removed: str, skipped: list[Skipped], build: BuildReport | None
    ) -> LibraryReport:
        index = self.assistant.index
        return LibraryReport(
            action=action, ok=ok, message=message, placed=tuple(placed), removed=removed, skipped=tuple(skipped),
            build=_build_dict(build) if build is not None else None,
            documents=len(index.manifest.documents), passages=index.size,
        )  # fmt: skip


def _skipped(file: str, reason: str, *aliases: str) -> Skipped:
    """A skipped file whose reason does not repeat its name (messages of `leftqa add` start with the file)."""
    names = sorted({file, *aliases} - {""}, key=len, reverse=True)
    stripped = True
    while stripped:
        stripped = False
        for name in names:
            for prefix in (f"{name}: ", f"{name!r}: "):
                if reason.startswith(prefix):
                    reason, stripped = reason[len(prefix) :], True
    return Skipped(file, reason)


def _manifest_skipped(index_dir: Path) -> tuple[SkippedEntry, ...]:
    from leftqa.index.store import read_manifest

    try:
        return read_manifest(Path(index_dir)).skipped or ()
    except LeftQAError:
        return ()


def _build_dict(build: BuildReport) -> dict[str, Any]:
    """The BuildReport as a dict, its `path` named `index`: a "path" key would make Gradio take it for a file."""
    data = asdict(build)
    data["index"] = data.pop("path")
    return data
