"""The share of evaluation time outside the network (issue 12): what is counted, not how fast."""
import numpy as np
import torch

from pspnet_caffe.eval.clock import NetworkClock, outside_share
from pspnet_caffe.eval.protocol import Settings, segment


def test_outside_share_arithmetic():
    assert outside_share(3.0, 4.0) == 0.25
    assert outside_share(0.0, 0.0) == 0.0
    assert outside_share(5.0, 4.0) == 0.0          # clock granularity never gives a negative share
    assert outside_share(0.0, 2.0) == 1.0


def test_clock_passes_results_through_and_counts_every_network_call():
    seen = []

    def model(x):
        seen.append(x.shape[0])
        return torch.zeros(x.shape[0], 3, x.shape[2], x.shape[3])

    clock = NetworkClock(model, "cpu")
    settings = Settings(num_classes=3, crop_size=17, base_size=40, scales=(1.0,), flip=True,
                        batch=2, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    probs = segment(clock, image, settings)
    assert probs.shape == (3, 30, 40)
    assert torch.allclose(probs, torch.full_like(probs, 1 / 3))
    assert clock.calls == len(seen) > 0             # every call of the net went through the clock
    assert sum(seen) % 2 == 0                       # windows and their mirrors
