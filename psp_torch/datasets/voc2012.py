"""PASCAL VOC 2012 (segmentation): background + 20 classes.

Layout: ``ImageSets/Segmentation/<split>.txt`` (an id per line, or the authors' ``image
label`` pairs: the id is the image's stem), ``JPEGImages/<id>.jpg``,
``SegmentationClass/<id>.png``: palette PNGs whose pixel values are the palette indices
0..20, 255 = void border (read as stored, the network's ids). Training split ``train_aug``
(the 10,582 images of VOC train + SBD minus VOC val): ids from
``ImageSets/Segmentation/train_aug.txt`` (or ``ImageSets/SegmentationAug/``), labels
``SegmentationClassAug/<id>.png`` (grey PNGs holding the ids 0..20 / 255). The folder may be
the data root itself, ``VOC2012/`` or ``VOCdevkit/VOC2012/`` under it.

Test split: no public labels; the official server scores submission PNGs (palette PNGs in
``results/VOC2012/Segmentation/comp6_test_cls/``). The released model was trained with val
images: its val score is not comparable to the published test score (85.41 mIoU,
multi-scale, 1456 images).

Palette: the devkit's bit-interleaved colormap (`voc_colormap`; index 255 = (224, 224, 192)).
"""
from __future__ import annotations

from pathlib import Path

from .base import (Dataset, DatasetError, EvalDefaults, Published, Sample, Split, TrainRecipe,
                   find_root, frozen_palette, voc_colormap)
from .files import list_lines

CLASSES = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
    'sheep', 'sofa', 'train', 'tvmonitor',
)
TRAIN_AUG = "train_aug"


class VOC2012(Dataset):
    def samples(self, root, split="val"):
        root = find_root(Path(root), "ImageSets/Segmentation", ("VOC2012", "VOCdevkit/VOC2012"))
        listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if split == TRAIN_AUG and not listing.exists():
            listing = root / "ImageSets" / "SegmentationAug" / f"{split}.txt"
        if not listing.exists():
            raise DatasetError(f"{listing}: split list missing")
        ids = [Path(ln.split()[0]).stem for _, ln in list_lines(listing) if ln.strip()]
        labels = "SegmentationClassAug" if split == TRAIN_AUG else "SegmentationClass"
        labelled = self.split(split).labelled
        return [Sample(i, root / "JPEGImages" / f"{i}.jpg",
                       root / labels / f"{i}.png" if labelled else None)
                for i in ids]


DATASET = VOC2012(
    name="voc",
    title="PASCAL VOC 2012",
    classes=CLASSES,
    palette=frozen_palette(voc_colormap(256)[:len(CLASSES)]),
    label_ids=len(CLASSES),
    splits={"val": Split(1449),
            "test": Split(1456, labelled=False,
                          submission="results/VOC2012/Segmentation/comp6_test_cls"),
            TRAIN_AUG: Split(10582)},
    train_split=TRAIN_AUG,
    crop_size=473,
    eval=EvalDefaults(split="test", base_size=512,
                      published_ms=Published(85.41)),
    train=TrainRecipe(iterations=30_000, rotate=True, blur=True),
    label_png_palette=frozen_palette(voc_colormap(256)),
)
