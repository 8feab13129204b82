"""Access to the Caffe oracle fixtures copied into tests/data/oracle.

Each case folder holds deploy.prototxt, weights.caffemodel (and sometimes
weights.caffemodel.h5), blobs.npz (inputs and every top blob after one Caffe
forward) and meta.json. Keys named ``<blob>@sub7`` hold ``blob[..., ::7, ::7]``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORACLE = Path(__file__).parent / "data" / "oracle"


@dataclass
class OracleCase:
    name: str            # e.g. "layers/interp_crop"
    dir: Path

    @property
    def prototxt(self) -> Path:
        return self.dir / "deploy.prototxt"

    @property
    def caffemodel(self) -> Path:
        return self.dir / "weights.caffemodel"

    @property
    def h5(self) -> Path | None:
        p = self.dir / "weights.caffemodel.h5"
        return p if p.exists() else None

    @property
    def meta(self) -> dict:
        return json.loads((self.dir / "meta.json").read_text())

    def blobs(self) -> dict[str, np.ndarray]:
        with np.load(self.dir / "blobs.npz") as z:
            return {k: z[k] for k in z.files}

    @property
    def input_names(self) -> list[str]:
        return list(self.meta["inputs"].keys())


def cases(group: str | None = None) -> list[OracleCase]:
    """All forward cases, or those of one group ("layers", "nets").

    The training oracle (``train/``: three SGD iterations, no deploy net) is not a forward
    case; tests/test_train_oracle.py reads it.
    """
    out = []
    for d in sorted(ORACLE.glob("*/*")):
        if d.parent.name == "train":
            continue
        if (d / "meta.json").exists() and (group is None or d.parent.name == group):
            out.append(OracleCase(f"{d.parent.name}/{d.name}", d))
    return out


def compare(ours: np.ndarray, key: str, expected: np.ndarray) -> np.ndarray:
    """Our full blob reduced the way the fixture stored it (``@sub7`` keys)."""
    if key.endswith("@sub7"):
        return ours[..., ::7, ::7]
    return ours
