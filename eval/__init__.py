"""The authors' evaluation: the protocol (`protocol`, `resize`, `strips`), scoring, outputs, the
`run` CLI; `Segmenter` (`segmenter`) is the protocol as a Python API."""
from .segmenter import Result, Segmenter, protocol_settings  # noqa: F401
