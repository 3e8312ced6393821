"""Load test of the chat server over HTTP: concurrent conversations against a real `leftqa serve` on 127.0.0.1.

Each conversation is its own HTTP client asking its questions in turn through the `/ask` endpoint (Gradio's
`/gradio_api/call/ask`: queue the call, read the event stream), with the conversation's earlier questions as
history, as the chat does. While the load runs, a new visitor loads
the page and asks a question, to show the server stays responsive. Every request must succeed.

    python benchmarks/load.py                          # starts `leftqa serve --index index/` on a free port
    python benchmarks/load.py --url http://127.0.0.1:7860/ --conversations 20 --questions 25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
VISITOR_QUESTION = "Who led the Antwerp Group?"


@dataclass(frozen=True)
class LoadReport:
    """What one load run measured (latencies in milliseconds, as seen by the clients)."""

    conversations: int
    questions: int
    requests: int
    failures: int
    errors: tuple[str, ...]
    p50_ms: float
    p95_ms: float
    max_ms: float
    wall_s: float
    per_second: float
    visitor_page_ms: float
    visitor_answer_ms: float
    visitor_ok: bool
    visitor_during_load: bool  # the visitor was served before the load ended

    def summary(self) -> str:
        """A few lines for the terminal."""
        return (
            f"{self.conversations} conversations x {self.questions} questions = {self.requests} requests, "
            f"{self.failures} failed, in {self.wall_s:.1f} s ({self.per_second:.1f}/s)\n"
            f"latency p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, max {self.max_ms:.0f} ms\n"
            f"new visitor during the load: page {self.visitor_page_ms:.0f} ms, answer {self.visitor_answer_ms:.0f} ms, "
            f"{'ok' if self.visitor_ok else 'FAILED'}{'' if self.visitor_during_load else ' (after the load had ended)'}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def eval_questions(folder: Path = REPO / "evals") -> list[str]:
    """The questions of the eval cases (every `question` field in evals/*.jsonl), in file order."""
    out: list[str] = []
    for path in sorted(folder.glob("*.jsonl")):
        if path.name == "feedback.jsonl":
            continue
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                q = json.loads(line).get("question")
                if isinstance(q, str) and q.strip():
                    out.append(q)
    return out


async def _call_ask(http, url: str, question: str, history: list[str], mode: str) -> dict:  # noqa: ANN001
    """One request through Gradio's HTTP API: queue the call, then read its event stream to the result."""
    posted = await http.post(f"{url}gradio_api/call/ask", json={"data": [question, history, mode]})
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    event, data = "", ""
    async with http.stream("GET", f"{url}gradio_api/call/ask/{event_id}") as stream:
        stream.raise_for_status()
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
                if event in ("complete", "error"):
                    break
    if event != "complete":
        raise RuntimeError(f"{event or 'no result'}: {data[:200]}")
    out = json.loads(data)[0]
    if not isinstance(out, dict) or not isinstance(out.get("answer"), str):
        raise ValueError(f"unexpected response {data[:200]}")
    return out


async def _conversation(url: str, questions: list[str], mode: str) -> tuple[list[float], list[str]]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    history: list[str] = []
    async with httpx.AsyncClient(timeout=120) as http:  # one client per conversation, like one browser each
        for q in questions:
            t0 = time.perf_counter()
            try:
                await _call_ask(http, url, q, list(history), mode)
            except Exception as exc:  # noqa: BLE001 - a load test counts every kind of failure
                errors.append(f"{q[:60]!r}: {type(exc).__name__}: {exc}"[:300])
            latencies.append((time.perf_counter() - t0) * 1000)
            history.append(q)
    return latencies, errors


async def _visitor(url: str, delay: float) -> dict[str, float | bool]:
    """A newcomer during the load: load the page, then ask one question."""
    import httpx

    await asyncio.sleep(delay)
    out: dict[str, float | bool] = {"ok": False, "page_ms": float("nan"), "answer_ms": float("nan")}
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            t0 = time.perf_counter()
            page = await http.get(url)
            out["page_ms"] = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            answer = await _call_ask(http, url, VISITOR_QUESTION, [], "hybrid")
            out["answer_ms"] = (time.perf_counter() - t0) * 1000
            out["ok"] = page.status_code == 200 and "gradio" in page.text.lower() and bool(answer.get("citations"))
    except Exception:  # noqa: BLE001 - reported as a failed visit
        out["ok"] = False
    out["done_at"] = time.perf_counter()
    return out


async def _run(url: str, plans: list[list[str]], mode: str) -> tuple[list[tuple[list[float], list[str]]], dict[str, float | bool]]:
    visitor = asyncio.create_task(_visitor(url, 0.5))
    results = await asyncio.gather(*(_conversation(url, plan, mode) for plan in plans))
    load_done = time.perf_counter()
    visit = await visitor
    visit["during_load"] = float(visit["done_at"]) <= load_done
    return list(results), visit


def run_load(url: str, conversations: int = 20, questions: int = 25, mode: str = "hybrid", pool: Sequence[str] | None = None) -> LoadReport:
    """Run `conversations` concurrent conversations of `questions` questions each against the server at `url`."""
    url = url if url.endswith("/") else url + "/"
    pool = list(pool or eval_questions())
    if not pool:
        raise SystemExit("no questions: evals/*.jsonl has no cases")
    # Conversation i starts at a different case, so the server sees a mix rather than 20 copies of one question.
    plans = [[pool[(i * 7 + j) % len(pool)] for j in range(questions)] for i in range(conversations)]
    t0 = time.perf_counter()
    results, visit = asyncio.run(_run(url, plans, mode))
    wall = time.perf_counter() - t0
    latencies = [ms for lat, _ in results for ms in lat]
    errors = tuple(e for _, errs in results for e in errs)
    return LoadReport(
        conversations=conversations,
        questions=questions,
        requests=len(latencies),
        failures=len(errors),
        errors=errors[:20],
        p50_ms=round(percentile(latencies, 50), 1),
        p95_ms=round(percentile(latencies, 95), 1),
        max_ms=round(max(latencies), 1),
        wall_s=round(wall, 2),
        per_second=round(len(latencies) / wall, 2),
        visitor_page_ms=round(float(visit["page_ms"]), 1),
        visitor_answer_ms=round(float(visit["answer_ms"]), 1),
        visitor_ok=bool(visit["ok"]),
        visitor_during_load=bool(visit["during_load"]),
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index_dir: Path, port: int, timeout: float = 300.0) -> subprocess.Popen:
    """Start `leftqa serve` on 127.0.0.1:port for `index_dir` and wait until it answers."""
    cmd = [sys.executable, "-m", "leftqa.app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--index", str(index_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"leftqa serve exited with {proc.returncode}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"leftqa serve did not answer within {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the load test and print the figures; exit 1 on any failed request."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="an already running server (default: start `leftqa serve` on a free port)")
    p.add_argument("--index", default=str(REPO / "index"), help="index folder for the started server (default index/)")
    p.add_argument("--conversations", type=int, default=20)
    p.add_argument("--questions", type=int, default=25, help="questions per conversation")
    p.add_argument("--mode", default="hybrid", choices=("hybrid", "bm25", "dense"))
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    proc = None
    url = args.url
    if url is None:
        port = free_port()
        proc = start_server(Path(args.index), port)
        url = f"http://127.0.0.1:{port}/"
    try:
        report = run_load(url, args.conversations, args.questions, args.mode)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    for e in report.errors:
        print("error:", e, file=sys.stderr)
    return 0 if report.failures == 0 and report.visitor_ok else 1


if __name__ == "__main__":
    sys.exit(main())
