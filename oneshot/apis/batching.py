"""Batches for the inferencer's cached path, and the per-pair results out.

The inferencer encodes each target and each query set once; only the
matcher and the heads run per (target, query) pair. A batch is one target
against up to ``batch_size`` query sets: the target's features are
repeated to the batch and the query sets' features are concatenated, one
row per pair.

The repeat is a copy on purpose, as in the detector's own batches
(``feat[inverse]`` in ``SiameseEpisodeMixin``): a stride-0 ``expand`` view
looks like ``(n, C, h, w)`` but holds one row, and mmcv's ``RoIAlign``
kernels read their input's memory as if it were contiguous, so every RoI
of the rows after the first would be pooled from memory outside the
tensor (heads that pool the target's own maps: BHRL, SARM).
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample

Feats = Tuple[torch.Tensor, ...]


def stack_patches(patches: Sequence[np.ndarray]) -> torch.Tensor:
    """K ``(S, S, 3)`` uint8 patches -> one ``(K, 3, S, S)`` uint8 tensor,
    the ``inputs['query']`` of one episode."""
    return torch.from_numpy(np.stack(patches)).permute(0, 3, 1,
                                                       2).contiguous()


def pair_batches(target_feats: Feats, query_feats: Sequence[Feats],
                 batch_size: int) -> Iterator[Tuple[int, Feats, Feats]]:
    """One target against the query sets, ``batch_size`` pairs at a time.

    Args:
        target_feats (tuple[Tensor]): Per level ``(1, C, h, w)``.
        query_feats (list[tuple[Tensor]]): Per query set, per level
            ``(1, C, h', w')``.
        batch_size (int): Pairs per batch.

    Yields:
        tuple: ``(start, target_feats, query_feats)``: the first query
        set's position and per level ``(n, C, h, w)`` / ``(n, C, h', w')``
        tensors of the batch's ``n`` pairs.
    """
    for start in range(0, len(query_feats), batch_size):
        chunk = query_feats[start:start + batch_size]
        n = len(chunk)
        yield (start,
               tuple(f.expand(n, *f.shape[1:]).contiguous()
                     for f in target_feats),
               tuple(torch.cat([q[level] for q in chunk], dim=0)
                     for level in range(len(chunk[0]))))


def pair_samples(sample: DetDataSample,
                 labels: Sequence[int]) -> List[DetDataSample]:
    """One copy of a target's data sample per pair, its ``episode_label``
    set to the pair's label (the label the predictions carry)."""
    out = []
    for label in labels:
        s = sample.clone()
        s.set_metainfo(dict(episode_label=label))
        out.append(s)
    return out


def pair_detections(pred: DetDataSample, query: str, score_thr: float = 0.0,
                    topk: Optional[int] = None) -> dict:
    """A pair's predictions as the inferencer returns them.

    Returns:
        dict: ``query`` (name), ``bboxes`` ``(N, 4)`` float32 xyxy in
        target pixels and ``scores`` ``(N,)``, sorted by score (stable),
        those below ``score_thr`` dropped, at most ``topk``.
    """
    inst = pred.pred_instances
    scores = inst.scores.cpu().numpy()
    bboxes = inst.bboxes.cpu().numpy().astype(np.float32)
    order = np.argsort(-scores, kind='stable')
    order = order[scores[order] >= score_thr]
    if topk is not None:
        order = order[:topk]
    return dict(query=query, bboxes=bboxes[order], scores=scores[order])
