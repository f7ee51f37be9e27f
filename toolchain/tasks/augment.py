"""Training-time augmentation of encoded images.

`shift_images` moves every sample of a batch of encoded images by its own
random whole-pixel offset (zeros enter at the edges): the translation
augmentation image classifiers use on MNIST. For an encoder that treats each
pixel on its own (rate, regular, latency, current), shifting the encoded
trains equals encoding the shifted image, so the encoding is done once.
"""
from __future__ import annotations

import torch

from models.errors import SpikeportError


def shift_images(x: torch.Tensor, image_shape: tuple, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """``x`` (B, T, H*W) with each sample shifted by (dy, dx), each uniform in
    ``-max_shift..max_shift`` pixels and drawn from ``generator``; row-major pixels."""
    if max_shift == 0:
        return x
    H, W = image_shape
    if x.shape[-1] != H * W:
        raise SpikeportError(f"shift augmentation: {x.shape[-1]} inputs are not a {H}x{W} image")
    B, T = x.shape[:2]
    offsets = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator)
    images, out = x.reshape(B, T, H, W), torch.zeros(B, T, H, W, dtype=x.dtype)
    for dy, dx in torch.unique(offsets, dim=0).tolist():
        rows = (offsets == torch.tensor([dy, dx])).all(dim=1).nonzero().squeeze(1)
        out[rows, :, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
            images[rows, :, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out.reshape(B, T, H * W)
