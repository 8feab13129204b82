import sys
from pathlib import Path

import pytest

from pspnet_caffe.converter.convert import convert

ROOT = Path(__file__).resolve().parent.parent   # the project is imported as installed
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

DATA = TESTS / "data"

try:        # no test may race a clock: Hypothesis' per-example deadline and its "too slow"
    from hypothesis import HealthCheck, settings   # health check are both wall-clock limits

    settings.register_profile("no_clock", deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("no_clock")
except ImportError:
    pass


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def slim_voc_training(folder: Path) -> tuple[Path, Path]:
    """(folder, slim.pth): the oracle's slim PSPNet50 converted into `folder`, and
    folder/list.txt listing every VOC sample image with its label (the training CLI's tiny
    one's-own dataset: 21 classes)."""
    samples = DATA / "samples" / "VOC2012"
    slim_dir = DATA / "oracle" / "nets" / "pspnet50_ade20k_slim"
    slim = convert(slim_dir / "weights.caffemodel", slim_dir / "deploy.prototxt",
                   out=folder / "slim.pth", log=lambda *a: None)
    (folder / "list.txt").write_text(
        "".join(f"JPEGImages/{p.stem}.jpg SegmentationClass/{p.stem}.png\n"
                for p in sorted((samples / "JPEGImages").glob("*.jpg"))))
    return folder, slim
