"""Session-scoped fixtures: work that several test files would otherwise repeat with the same settings.

Only fixtures live here (no hooks): pytest's own exit status stays as it is, e.g. 5 when no
test is collected.
"""
import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The tiny digits checkpoint of `test_verify.make_tiny_checkpoint` (seed 0, trained once a
    session); read-only for the tests that share it."""
    from test_verify import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_verified_alone(tiny_checkpoint):
    """``verify(tiny_checkpoint, **test_scaleout.VERIFY)`` in this one process, no scale-out
    session open: the reference the local-worker and the Ray runs must reproduce exactly."""
    from test_scaleout import VERIFY
    from toolchain import scaleout
    from toolchain.verify import verify

    assert scaleout.active() is None  # no pool in use: the verify below runs in this process
    return verify(tiny_checkpoint, **VERIFY)
