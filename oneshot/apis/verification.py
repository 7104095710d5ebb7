"""Query verification: check each detection against the query with the
detector's own query encoder.

The matchers compare every target position with the query's features; on
look-alike classes (a solid star and a solid cross, a circle and a hexagon
outline) a tiny model's matcher and heads often score both high, although
its backbone features of the two *crops* are far apart (README, quickstart
section). Verification re-encodes each detection's box like a query (the
config's query cropping and resizing, ``extract_query_feat``), pools each
level's features over space, concatenates the levels and compares the
result with the query's, pooled the same way, by cosine similarity.

It is an inference option (``OneShotInferencer(...)(verify_thr=...)``,
``tools/demo.py --verify-thr``), not part of any paper's method: the
protocol metrics never use it.
"""
import json
import os.path as osp

import numpy as np

# One pooling for the query embedding, shared with the training loss;
# re-exported here, where the inferencer and the tools import it.
from oneshot.models.losses.query_alignment_loss import \
    pooled_embedding  # noqa: F401


def clip_box(box: np.ndarray, width: int, height: int) -> list:
    """``[x1, y1, x2, y2]`` inside the image and at least 1 px wide and
    high (a predicted box may reach past the border)."""
    x1 = float(np.clip(box[0], 0, max(width - 1, 0)))
    y1 = float(np.clip(box[1], 0, max(height - 1, 0)))
    x2 = float(np.clip(box[2], x1 + 1, width))
    y2 = float(np.clip(box[3], y1 + 1, height))
    return [x1, y1, x2, y2]


def read_verify_thr(value: str) -> float:
    """A verification threshold given on a command line: a number, or the
    path of the JSON that ``tools/analysis/calibrate_verification.py
    --out`` wrote (its ``verify_thr``, the threshold chosen on seen classes;
    ``tools/quickstart.sh`` writes ``work_dirs/quickstart/verification.json``).

    Raises:
        ValueError: ``value`` is neither a number nor a readable JSON file
            with a numeric ``verify_thr``; the message names the file.
    """
    try:
        return float(value)
    except ValueError:
        pass
    if not osp.isfile(value):
        raise ValueError(
            f'Verification threshold {value!r} is neither a number nor an '
            'existing file; give a cosine similarity such as 0.95 or the '
            'JSON written by tools/analysis/calibrate_verification.py --out.')
    try:
        with open(value) as f:
            thr = json.load(f)['verify_thr']
        return float(thr)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f'{value} holds no numeric "verify_thr" ({type(err).__name__}: '
            f'{err}); write it with tools/analysis/calibrate_verification.py '
            '--out FILE.') from err
