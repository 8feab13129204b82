"""Which settings a run is: derived from a frozen settings dataclass, every field unless it is
declared `exempt(why)`. Training's resume identity (`train/config.py`) and evaluation's run
record, results.json and reference check (`eval/protocol.py`'s `Settings`) all read it, so a
new setting counts everywhere unless whoever adds it says why it cannot.

An exemption names the uses it is exempt from (``of``), each a question about the run:

- `IDENTITY`: must a resumed run have it unchanged? (the trained weights, the predictions)
- `REPORT`: is it written among results.json's settings?
- `REFERENCE`: must it be the authors' for the published numbers to apply?
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePath

EXEMPT = "exempt"               # field metadata: {use: why}
IDENTITY, REPORT, REFERENCE = "identity", "report", "reference"
USES = (IDENTITY, REPORT, REFERENCE)


def exempt(why: str, *, of: tuple = USES, **field_kwargs):
    """A dataclass field kept out of the uses `of` (all of them unless named); `why` says why
    it cannot change what that use guards. ``field_kwargs`` go to `dataclasses.field`
    (``default=...``)."""
    unknown = set(of) - set(USES)
    if unknown or not why:
        raise ValueError(f"exempt: uses {sorted(unknown)} unknown (one of {USES}) or no reason")
    return dataclasses.field(**field_kwargs, metadata={EXEMPT: {use: why for use in of}})


def exemptions(settings, use: str = IDENTITY) -> dict[str, str]:
    """{field name: why} of the fields of the dataclass (or instance) exempt from `use`."""
    return {f.name: f.metadata[EXEMPT][use] for f in dataclasses.fields(settings)
            if use in f.metadata.get(EXEMPT, {})}


def identity_fields(settings, use: str = IDENTITY) -> dict:
    """Every field of the dataclass instance `settings` not exempt from `use`, as the JSON
    values a record reads back (tuples -> lists, a path -> its absolute form)."""
    skip = exemptions(settings, use)
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
              if f.name not in skip}
    return json.loads(json.dumps(fields, default=_plain))


def _plain(value):
    if isinstance(value, PurePath):
        return str(Path(value).resolve())
    raise TypeError(f"{type(value).__name__} {value!r} has no JSON form for a run record")
