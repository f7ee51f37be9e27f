"""Training-time augmentation: random whole-pixel shifts of encoded images, and the thread setting."""
import numpy as np
import pytest
import torch

from models.errors import SpikeportError
from toolchain.tasks import encoders
from toolchain.tasks.augment import shift_images


def test_shifting_the_encoded_trains_equals_encoding_the_shifted_image():
    """The regular encoder treats each pixel alone, so the batch is encoded once and shifted per sample."""
    g = torch.Generator().manual_seed(0)
    images = np.random.default_rng(1).random((6, 5, 7)).astype(np.float32)
    x = torch.as_tensor(encoders.regular_encode(images.reshape(6, 35), 12))
    shifted = shift_images(x, (5, 7), 2, g)
    offsets = torch.randint(-2, 3, (6, 2), generator=torch.Generator().manual_seed(0))
    for i, (dy, dx) in enumerate(offsets.tolist()):
        moved = np.zeros_like(images[i])
        src = images[i][max(-dy, 0):5 + min(-dy, 0), max(-dx, 0):7 + min(-dx, 0)]
        moved[max(dy, 0):5 + min(dy, 0), max(dx, 0):7 + min(dx, 0)] = src
        assert torch.equal(shifted[i], torch.as_tensor(encoders.regular_encode(moved.reshape(1, 35), 12))[0])
    assert len(set(map(tuple, offsets.tolist()))) > 1  # the samples of a batch move differently


def test_no_shift_returns_the_batch_and_draws_nothing():
    x, g = torch.ones(2, 3, 4), torch.Generator().manual_seed(5)
    assert shift_images(x, (2, 2), 0, g) is x
    assert torch.equal(torch.randint(0, 100, (3,), generator=g),
                       torch.randint(0, 100, (3,), generator=torch.Generator().manual_seed(5)))


def test_a_shift_of_an_input_that_is_not_the_stated_image_is_refused():
    with pytest.raises(SpikeportError, match="not a 3x3 image"):
        shift_images(torch.zeros(1, 2, 10), (3, 3), 1, torch.Generator())


def test_shift_on_a_task_without_images_is_refused_in_one_line():
    from toolchain.methods.superspike.train import train

    with pytest.raises(SpikeportError, match="shift=1 needs an image task; yinyang"):
        train("yinyang", progress=False, epochs=1, shift=1)


def test_set_threads_sets_torch_and_numbas_thread_counts():
    import numba

    from toolchain.threads import set_threads

    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
