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
