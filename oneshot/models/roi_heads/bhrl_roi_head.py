"""BHRL's query-aware RoI head."""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from .query_aware_roi_head import QueryAwareRoIHead


@MODELS.register_module()
class BHRLRoIHead(QueryAwareRoIHead):
    """RoI head of BHRL: every proposal is related to the episode's query.

    BHRL (Yang et al., "Balanced and Hierarchical Relation Learning for
    One-shot Object Detection", CVPR 2022), instance level. A
    :class:`QueryAwareRoIHead`: :class:`SiameseTwoStageDetector` passes
    ``query_feats`` and ``target_feats`` (the FPN maps before the matcher).

    - Target RoI features: ``bbox_roi_extractor`` (RoIAlign 7x7, mmdet's
      level mapping) on the *original* FPN maps ``target_feats``
      (``proposal_feats = 'target'``), as in the paper. The matched maps
      ``x`` are not read by this head: the image-level (L1-difference)
      relation reaches it through the RPN's proposals, and the
      instance-level relation compares unfused appearance with the query.
    - Query RoI feature (:meth:`extract_query_roi_feat`): every query FPN
      level upsampled (bilinear) to the finest level and averaged, then
      RoIAlign (the extractor's ``roi_layer`` settings) of the whole query
      box. The query patch is the object crop padded to a square
      (``ResizeQueryPatches``), so the whole box is the whole patch. It is
      computed once per episode per forward and proposals index their
      episode's row (``rois[:, 0]``); it never depends on the proposal or
      on the level the proposal is pooled from.
    - ``bbox_head`` (:class:`BHRLBBoxHead`) relates each proposal to its
      query and predicts fg/bg + a class-agnostic box.

    Only the bbox branch is supported (BHRL has no mask head).

    Args:
        bbox_roi_extractor (dict): RoI extractor config; its
            ``out_channels`` is the FPN width.
        bbox_head (dict): Bbox head config, normally ``BHRLBBoxHead``
            (its ``forward`` takes ``(x, query_feats, query_inds)``).
        **kwargs: ``StandardRoIHead`` arguments (``train_cfg``,
            ``test_cfg``, ``init_cfg``).
    """

    proposal_feats = 'target'

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: ConfigType) -> None:
        """Build the extractor, the bbox head and the query RoI layer.

        The query RoI layer has the extractor's ``roi_layer`` settings with
        ``spatial_scale=1``: the query box is given in coordinates of the
        finest query level.
        """
        super().init_bbox_head(bbox_roi_extractor, bbox_head)
        self.query_roi_layer = self.bbox_roi_extractor.build_roi_layers(
            bbox_roi_extractor['roi_layer'], [1])[0]

    def encode_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """See :meth:`extract_query_roi_feat`."""
        return self.extract_query_roi_feat(query_feats)

    def extract_query_roi_feat(self, query_feats: Sequence[Tensor]) -> Tensor:
        """The query's RoI feature, one per episode.

        Args:
            query_feats (Sequence[Tensor]): Per FPN level ``(B, C, h_l,
                w_l)``, finest level first.

        Returns:
            Tensor: ``(B, C, s, s)`` with ``s`` the RoIAlign output size.
        """
        finest = query_feats[0]
        size = finest.shape[-2:]
        merged = finest
        for feat in query_feats[1:]:
            if feat.shape[-2] > size[0] or feat.shape[-1] > size[1]:
                shapes = [tuple(f.shape) for f in query_feats]
                raise ValueError(
                    'BHRLRoIHead: query_feats must be ordered finest level '
                    f'first, got shapes {shapes}.')
            merged = merged + F.interpolate(
                feat, size=size, mode='bilinear', align_corners=False)
        merged = merged / len(query_feats)
        num_episodes = merged.shape[0]
        whole_box = merged.new_tensor([0., 0., size[1], size[0]])
        rois = torch.cat([
            torch.arange(num_episodes, dtype=merged.dtype,
                         device=merged.device)[:, None],
            whole_box.expand(num_episodes, 4)
        ], dim=1)
        return self.query_roi_layer(merged, rois)
