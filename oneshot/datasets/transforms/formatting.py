"""Packing of one-shot episodes."""
import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

ONESHOT_META_KEYS = (
    'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
    'flip_direction', 'episode_cat_id', 'episode_label', 'query_img_ids',
    'query_ann_ids', 'query_bboxes', 'query_img_paths', 'run', 'episode_id',
    'negative', 'other_gt_bboxes', 'other_gt_labels')


@TRANSFORMS.register_module()
class PackOneShotInputs(PackDetInputs):
    """Pack a target image, its episode ground truth and the query patches.

    Output: ``dict(inputs=dict(img=uint8 (3, H, W), query=uint8
    (K, 3, S, S)), data_samples=DetDataSample)``; the data sample is
    exactly what :class:`mmdet.datasets.transforms.PackDetInputs` makes,
    with the episode (``episode_cat_id``, ``episode_label``, query ids,
    boxes and paths, ``run``, ``episode_id``) in its metainfo.

    Args:
        meta_keys (tuple[str]): Keys copied into the metainfo.
    """

    def __init__(self, meta_keys: tuple = ONESHOT_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        patches = results.get('query_imgs')
        if not patches:
            raise KeyError(
                'PackOneShotInputs needs results["query_imgs"]; put '
                'LoadQueryPatches and ResizeQueryPatches before it.')
        shapes = {p.shape for p in patches}
        if len(shapes) != 1:
            raise ValueError(
                f'Query patches of episode {results.get("episode_id")} have '
                f'different shapes {sorted(shapes)}; add ResizeQueryPatches '
                'to the pipeline.')
        packed = super().transform(results)
        query = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2)
        packed['inputs'] = dict(img=packed['inputs'],
                                query=query.contiguous())
        return packed
