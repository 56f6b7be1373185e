"""Fixtures for the detection-op tests: the torchvision outputs made by fixtures/ops/make_torchvision_fixtures.py."""

import os

import numpy as np
import pytest

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'ops', 'torchvision.npz')


@pytest.fixture(scope='session')
def tv():
  """torchvision reference arrays (see the script beside the .npz for how they were made)."""
  with np.load(FIXTURE) as data:
    return {k: data[k] for k in data.files}
