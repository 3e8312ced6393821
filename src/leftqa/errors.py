"""Typed errors raised by the library; only the CLI and UI turn them into messages."""

from __future__ import annotations


class LeftQAError(Exception):
    """Base class of every error leftqa raises on purpose."""


class ConfigError(LeftQAError):
    """A setting or command-line value is invalid."""


class CorpusError(LeftQAError):
    """The corpus folder is missing, empty or unreadable."""


class SourceError(LeftQAError):
    """One source file cannot be read (callers usually skip it with a warning)."""


class IndexMissingError(LeftQAError):
    """No index exists where one was expected."""


class IndexMismatchError(LeftQAError):
    """The index on disk was built with other settings, model or corpus."""


class IndexCorruptError(LeftQAError):
    """An index file is truncated, altered or unreadable."""


class IndexLockedError(LeftQAError):
    """Another build holds the index lock."""


class QuestionError(LeftQAError):
    """A question cannot be asked as given (empty, too long, malformed)."""


class EvalError(LeftQAError):
    """An eval case file is malformed or refers to evidence the index lacks."""


class ModelError(LeftQAError):
    """The embedding model cannot be loaded."""


class ClusterError(LeftQAError):
    """A build on a Ray cluster cannot run: ray not installed, the cluster unreachable or lost, workers failing."""


class FeedbackError(LeftQAError):
    """A feedback line cannot be written."""


class IndexWriteError(LeftQAError, OSError):
    """A new index could not be written (disk full, permissions); the previous one is kept. Also an OSError."""


class TrainingError(LeftQAError):
    """Training data missing or malformed, or a training run that cannot start."""
