"""The inferencer's preprocessing, built from the config's test pipeline so
that a user's target and query go through exactly what a test episode
goes through.

The test pipeline of every one-shot config is
``LoadImageFromFile, <target steps>, LoadAnnotations, LoadQueryPatches,
ResizeQueryPatches, PackOneShotInputs``. :func:`build_inference_pipeline`
splits it by step type:

- target: every step except ``LoadAnnotations`` (no ground truth), the
  query steps and the packing; the loading step becomes
  ``LoadImageFromNDArray`` (images are read by
  :func:`oneshot.apis.images.read_image`, so paths and arrays take one
  path) and ``PackDetInputs`` packs the target alone;
- query: ``LoadQueryPatches``'s crop window (its ``context``) and
  ``ResizeQueryPatches`` (size, centring, padding; never flipped).
"""
import copy
from dataclasses import dataclass
from typing import Optional

import numpy as np
from mmcv.transforms import Compose
from mmdet.registry import TRANSFORMS
from mmengine.config import Config

from .images import describe, read_image
from .queries import Query

# Steps the target pipeline leaves out: ground truth and packing (the
# target is packed alone, with TARGET_META_KEYS).
DROPPED_STEPS = ('LoadAnnotations', 'PackOneShotInputs', 'PackDetInputs')
TARGET_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'flip', 'flip_direction')


@dataclass
class InferencePipeline:
    """Target and query preprocessing of one config.

    Attributes:
        target (Compose): ``dict(img=(H, W, 3) uint8 BGR, img_id=...)`` ->
            ``dict(inputs=(3, H', W') uint8, data_samples=DetDataSample)``.
        query_loader: The config's ``LoadQueryPatches`` (its crop window).
        query_resizer: The config's ``ResizeQueryPatches``, flips off.
    """
    target: Compose
    query_loader: object
    query_resizer: object

    def prepare_target(self, img: np.ndarray, path: Optional[str],
                       index: int) -> dict:
        """One target through the target steps.

        Args:
            img (np.ndarray): ``(H, W, 3)`` uint8 BGR (from
                :func:`read_image`).
            path (str, optional): Its file, kept as ``img_path``.
            index (int): Its position in the call, kept as ``img_id``.

        Returns:
            dict: ``inputs`` ``(3, H', W')`` uint8 and ``data_samples``.
        """
        packed = self.target(dict(img=img, img_id=index))
        # LoadImageFromNDArray leaves img_path empty; keep the file's.
        packed['data_samples'].set_metainfo(dict(img_path=path))
        return packed

    def crop_query(self, query: Query, index: str) -> np.ndarray:
        """Read one query shot, check its box, crop it with the config's
        context and resize it: an ``(S, S, 3)`` uint8 BGR patch.

        ``index`` (``'<set>.<shot>'``) names an array input in errors; a
        box that is degenerate or leaves the image is an error naming the
        query, the box and the image size.
        """
        what = describe(query.img, index, 'Query')
        img = read_image(query.img, what)
        h, w = img.shape[:2]
        bbox = [0, 0, w, h] if query.bbox is None else [
            float(v) for v in query.bbox]
        if len(bbox) != 4:
            raise ValueError(f'{what}: box {query.bbox} must be '
                             '[x1, y1, x2, y2].')
        x1, y1, x2, y2 = bbox
        if not (x2 - x1 >= 1 and y2 - y1 >= 1):
            raise ValueError(
                f'{what}: box {bbox} has zero or negative size; give '
                'x1 < x2 and y1 < y2 (pixels, at least 1 px apart).')
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            raise ValueError(
                f'{what}: box {bbox} is outside the {w}x{h} image; '
                'coordinates must lie in [0, width] x [0, height].')
        cx1, cy1, cx2, cy2 = self.query_loader.crop_box(
            bbox, w, h, dict(ann_id=None, img_id=index, img_path=what))
        patch = np.ascontiguousarray(img[cy1:cy2, cx1:cx2])
        return self.query_resizer.resize_one(patch)


def build_inference_pipeline(cfg: Config,
                             config_name: str = '<Config>'
                             ) -> InferencePipeline:
    """Split ``cfg.test_dataloader.dataset.pipeline`` into target and query
    preprocessing (see the module docstring).

    Raises:
        KeyError: The config has no test pipeline, no
        ``ResizeQueryPatches`` step (the query size) or does not start
        with an image loading step; the error names ``config_name``.
    """
    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError as e:
        raise KeyError(
            f'{config_name}: no test_dataloader.dataset.pipeline; '
            'the inferencer reuses the test pipeline to preprocess '
            'targets and queries.') from e
    target_steps, load_cfg, resize_cfg = [], None, None
    for step in steps:
        kind = step['type']
        if kind == 'LoadQueryPatches':
            load_cfg = step
        elif kind == 'ResizeQueryPatches':
            resize_cfg = step
        elif kind not in DROPPED_STEPS:
            target_steps.append(copy.deepcopy(step))
    if resize_cfg is None:
        raise KeyError(
            f'{config_name}: the test pipeline has no '
            'ResizeQueryPatches step; the inferencer needs the query '
            'size from it.')
    if not target_steps or 'LoadImage' not in target_steps[0]['type']:
        raise KeyError(
            f'{config_name}: the test pipeline must start with an '
            'image loading step (LoadImageFromFile).')
    target_steps[0] = dict(type='mmdet.LoadImageFromNDArray')
    target_steps.append(
        dict(type='PackDetInputs', meta_keys=TARGET_META_KEYS))
    load_cfg = dict(load_cfg or dict(type='LoadQueryPatches'))
    load_cfg.pop('type')
    resize_cfg = dict(resize_cfg)
    resize_cfg.pop('type')
    resize_cfg['flip_prob'] = 0.0
    return InferencePipeline(
        target=Compose(target_steps),
        query_loader=TRANSFORMS.get('LoadQueryPatches')(**load_cfg),
        query_resizer=TRANSFORMS.get('ResizeQueryPatches')(**resize_cfg))
