"""Query transforms: load the query patch(es) of an episode and bring them to
a fixed square size. Target transforms are mmdet's own."""
import math
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get


class ImageSizeMismatchError(ValueError):
    """The json ``width``/``height`` of an image is not its decoded size."""


def check_image_size(json_size: Sequence[int], decoded_hw: Sequence[int],
                     path: object, img_id: object, role: str) -> None:
    """Raise :class:`ImageSizeMismatchError` when the annotation file's
    ``(width, height)`` of an image differs from the decoded file's.

    Args:
        json_size (Sequence[int]): ``(width, height)`` from the json.
        decoded_hw (Sequence[int]): ``(height, width)`` of the decoded image
            (``img.shape[:2]``, ``ori_shape``).
        path: The image file (named in the error).
        img_id: Its image id (named in the error).
        role (str): What the image is in the episode (``'target'``,
            ``'query (annotation id 7)'``).
    """
    json_w, json_h = (int(v) for v in json_size)
    dec_h, dec_w = (int(v) for v in decoded_hw[:2])
    if (json_w, json_h) == (dec_w, dec_h):
        return
    raise ImageSizeMismatchError(
        f'Image {path!r} (image id {img_id}, {role}): the annotation file '
        f'gives width x height {json_w}x{json_h} but the decoded file is '
        f'{dec_w}x{dec_h}. Boxes are clipped to the json size and crops '
        'taken from the decoded pixels, so they would be wrong. Fix the '
        f'"width"/"height" of image id {img_id} in the json (or replace the '
        'file by the one the boxes were drawn on).')


@TRANSFORMS.register_module()
class LoadQueryPatches(BaseTransform):
    """Load each query's source image and crop its box.

    Required keys: ``query_infos`` (list of dicts with ``img_path``,
    ``img_id``, ``ann_id``, ``bbox`` = ``[x1, y1, x2, y2]``).
    Added keys: ``query_imgs`` (list of ``(h, w, 3)`` uint8 BGR arrays),
    ``query_img_ids``, ``query_ann_ids``, ``query_bboxes`` (the boxes
    cropped, with context, in source-image pixels), ``query_img_paths``.

    Image sizes: when a query info carries the json ``width``/``height`` of
    its image (:class:`OneShotCocoDataset` adds them), the decoded query
    image must have that size; when ``results`` holds the target's json
    ``width``/``height`` and its decoded ``ori_shape`` (``LoadImageFromFile``
    runs before this step in every one-shot pipeline), so must the target.
    This is the one step that sees both sizes of every image of an episode,
    so the check costs nothing extra; a mismatch raises
    :class:`ImageSizeMismatchError` naming the file, image id and sizes.

    Args:
        context (float): Enlarge the box by this fraction of its width and
            height on every side before cropping (clipped to the image).
            Defaults to 0.
        color_type (str): Passed to :func:`mmcv.imfrombytes`; ``'color'``
            always gives 3 channels (grayscale is replicated, alpha
            dropped). Defaults to ``'color'``.
        imdecode_backend (str): Defaults to ``'cv2'``.
        backend_args (dict, optional): File backend arguments.
    """

    def __init__(self, context: float = 0.0, color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        if context < 0:
            raise ValueError(f'context must be >= 0, got {context}')
        self.context = context
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def _load(self, path: str) -> np.ndarray:
        img = mmcv.imfrombytes(
            get(path, backend_args=self.backend_args), flag=self.color_type,
            backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'Query image {path!r} could not be decoded.')
        return img

    def crop_box(self, bbox: List[float], width: int, height: int,
                 info: dict) -> List[int]:
        """Integer crop window of ``bbox`` (+ context) inside the image."""
        x1, y1, x2, y2 = bbox
        if not (x2 - x1 >= 1 and y2 - y1 >= 1):
            raise ValueError(
                f'Query annotation {info.get("ann_id")} of image '
                f'{info.get("img_id")} has a degenerate box {bbox}; queries '
                'need a box at least 1 px wide and high.')
        dw, dh = (x2 - x1) * self.context, (y2 - y1) * self.context
        cx1, cy1 = max(0, math.floor(x1 - dw)), max(0, math.floor(y1 - dh))
        cx2 = min(width, math.ceil(x2 + dw))
        cy2 = min(height, math.ceil(y2 + dh))
        if cx2 - cx1 < 1 or cy2 - cy1 < 1:
            raise ValueError(
                f'Query annotation {info.get("ann_id")} of image '
                f'{info.get("img_id")}: box {bbox} lies outside the '
                f'{width}x{height} image ({info.get("img_path")}).')
        return [cx1, cy1, cx2, cy2]

    def transform(self, results: dict) -> dict:
        if not results.get('query_infos'):
            raise KeyError(
                'LoadQueryPatches needs results["query_infos"] (a one-shot '
                'dataset such as OneShotCocoDataset provides it).')
        if ('width' in results and 'height' in results
                and 'ori_shape' in results):
            check_image_size((results['width'], results['height']),
                             results['ori_shape'], results.get('img_path'),
                             results.get('img_id'), 'target')
        cache = {}
        patches, boxes = [], []
        for info in results['query_infos']:
            path = info['img_path']
            if path not in cache:
                try:
                    cache[path] = self._load(path)
                except FileNotFoundError as e:
                    raise FileNotFoundError(
                        f'Query image {path!r} (image id {info.get("img_id")}'
                        f', annotation id {info.get("ann_id")}) not found: '
                        f'{e}') from e
            img = cache[path]
            if 'width' in info and 'height' in info:
                check_image_size(
                    (info['width'], info['height']), img.shape, path,
                    info.get('img_id'),
                    f'query, annotation id {info.get("ann_id")}')
            h, w = img.shape[:2]
            x1, y1, x2, y2 = self.crop_box(info['bbox'], w, h, info)
            patches.append(np.ascontiguousarray(img[y1:y2, x1:x2]))
            boxes.append([x1, y1, x2, y2])
        results['query_imgs'] = patches
        results['query_bboxes'] = boxes
        infos = results['query_infos']
        results['query_img_ids'] = [q['img_id'] for q in infos]
        results['query_ann_ids'] = [q['ann_id'] for q in infos]
        results['query_img_paths'] = [q['img_path'] for q in infos]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(context={self.context})'


@TRANSFORMS.register_module()
class ResizeQueryPatches(BaseTransform):
    """Resize each query patch into a ``size x size`` square, keeping its
    aspect ratio, and pad the rest (the CoAE/BHRL query input).

    Required keys: ``query_imgs``. Modified: ``query_imgs`` (each
    ``(size, size, 3)``). Added: ``query_flip`` (list of bool).

    Args:
        size (int): Side of the square (128 for C4 methods, 192 for FPN
            methods in the papers).
        center (bool): Centre the patch in the square (CoAE) instead of
            placing it top-left (BHRL). Defaults to True.
        pad_val (int): Padding value. Defaults to 0.
        flip_prob (float): Probability of a horizontal flip of each patch
            (training augmentation; CoAE uses 0.5). Like mmdet's
            ``RandomFlip`` this draws from numpy's global RNG, which mmengine
            seeds per worker from ``randomness.seed``.
        interpolation (str): ``mmcv.imrescale`` interpolation.
    """

    def __init__(self, size: int = 128, center: bool = True,
                 pad_val: int = 0, flip_prob: float = 0.0,
                 interpolation: str = 'bilinear') -> None:
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}')
        self.size = size
        self.center = center
        self.pad_val = pad_val
        self.flip_prob = flip_prob
        self.interpolation = interpolation

    def resize_one(self, patch: np.ndarray) -> np.ndarray:
        """Rescale so the longer side is ``size`` and pad to a square."""
        h, w = patch.shape[:2]
        scale = self.size / max(h, w)
        new_w = min(self.size, max(1, int(round(w * scale))))
        new_h = min(self.size, max(1, int(round(h * scale))))
        patch = mmcv.imresize(patch, (new_w, new_h),
                              interpolation=self.interpolation)
        pad_w, pad_h = self.size - new_w, self.size - new_h
        left, top = (pad_w // 2, pad_h // 2) if self.center else (0, 0)
        return mmcv.impad(
            patch, padding=(left, top, pad_w - left, pad_h - top),
            pad_val=self.pad_val)

    def transform(self, results: dict) -> dict:
        out, flips = [], []
        for patch in results['query_imgs']:
            patch = self.resize_one(patch)
            flip = self.flip_prob > 0 and np.random.rand() < self.flip_prob
            if flip:
                patch = mmcv.imflip(patch, direction='horizontal')
            out.append(np.ascontiguousarray(patch))
            flips.append(bool(flip))
        results['query_imgs'] = out
        results['query_flip'] = flips
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'center={self.center}, flip_prob={self.flip_prob})')
