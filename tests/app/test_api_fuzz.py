"""Fuzzing the JSON API from its own OpenAPI schema with schemathesis, on a live server over a throwaway tiny corpus.

Bounded (a fixed seed, a few dozen cases per operation, ~15 s): no 5xx, every status and body as the schema says,
schema-valid input accepted and invalid input refused. POST /api/documents/url is left out (it would reach the
network); Starlette's 405 `Allow` header (it lists the methods of the first route of a path) is not checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CORPUS, build_fake_index, served, subprocess_env, write_files

from leftqa.config import Settings

pytestmark = pytest.mark.fuzz

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,positive_data_acceptance"


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    from leftqa.qa.assistant import Assistant

    settings = Settings(
        corpus_dir=write_files(tmp_path / "corpus", TINY_CORPUS), index_dir=tmp_path / "index", model="hash:64", scorer="none",
        feedback_path=tmp_path / "feedback.jsonl",
    )  # fmt: skip
    build_fake_index(settings)
    with served(Assistant.load(settings), settings) as url:
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "run", url.rstrip("/") + "/api/openapi.json", "--checks", CHECKS,
            "--max-examples", "25", "--seed", "1", "--workers", "1", "--exclude-path", "/documents/url", "--request-timeout", "60",
        ]  # fmt: skip
        r = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=600)
    summary = r.stdout[r.stdout.find("SUMMARY") :]
    print(summary)  # the counts: operations tested, cases generated, failures
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"Tested: 7\b", summary) and re.search(r"\d+ generated", summary), summary
