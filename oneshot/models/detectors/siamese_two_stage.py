"""Two-stage one-shot detector: shared backbone, matcher, RPN, RoI head."""
import copy
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

QUERY_FUSIONS = ('mean', 'max')


class EpisodeFeats(NamedTuple):
    """Features of a batch of episodes, one row per episode.

    Attributes:
        matched (tuple[Tensor]): Matcher output per level, ``(B, C', H, W)``;
            what the RPN and RoI head see.
        target (tuple[Tensor]): Backbone/neck target features per level,
            ``(B, C, H, W)``, before matching.
        query (tuple[Tensor]): Query features per level, ``(B, C, h, w)``,
            fused over the K shots.
    """
    matched: Tuple[Tensor, ...]
    target: Tuple[Tensor, ...]
    query: Tuple[Tensor, ...]


@MODELS.register_module()
class SiameseTwoStageDetector(TwoStageDetector):
    """Two-stage one-shot detector with a shared (Siamese) backbone.

    For every episode (a target image and K query patches of one class):

    1. the backbone (+ neck) encodes the target image
       (:meth:`extract_feat`, mmdet's) and the K query patches
       (:meth:`extract_query_feat`, fused over K by ``query_fusion``);
    2. a matcher (``oneshot.models.matchers``) conditions the target maps on
       the query: ``matcher(target_feats, query_feats) -> matched_feats``;
    3. a stock ``RPNHead`` proposes on the matched maps and the RoI head
       scores them. Heads are class-agnostic (``num_classes=1``): "the
       query's class" vs background. :meth:`predict` writes each episode's
       ``episode_label`` into ``pred_instances.labels``.

    Work is shared across episodes of a batch (DESIGN.md, Performance):
    episodes whose target images have the same ``img_id`` metainfo and an
    identical input tensor run the backbone once; episodes whose queries
    have the same ``query_ann_ids`` and identical tensors run it once too.
    Results equal running the episodes one by one (with the backbone's BN
    layers in eval mode, as ``norm_eval=True`` keeps them).

    Extension point for query-aware RoI heads: a RoI head class that sets
    the attribute ``uses_query = True`` receives two extra keyword
    arguments in ``loss``, ``predict`` and ``forward``:

    - ``query_feats`` (tuple[Tensor]): per level ``(B, C, h, w)``, the
      K-fused query features of each episode;
    - ``target_feats`` (tuple[Tensor]): per level ``(B, C, H, W)``, the
      target features *before* the matcher (e.g. BHRL pools proposals from
      the original FPN maps),

    after the usual ``(x, rpn_results_list, batch_data_samples)`` where
    ``x`` is the matched maps. Stock mmdet RoI heads get neither.

    Args:
        backbone (dict): Backbone config, shared by targets and queries.
        matcher (dict): Matcher config (e.g. ``L1DiffMatcher``,
            ``CrossAttentionMatcher``).
        rpn_head (dict): RPN head config (its ``in_channels`` are the
            matcher's output channels).
        roi_head (dict): RoI head config, ``num_classes=1``.
        train_cfg (dict): ``rpn``, ``rpn_proposal`` and ``rcnn`` settings.
        test_cfg (dict): ``rpn`` and ``rcnn`` settings.
        neck (dict, optional): Neck config (e.g. FPN).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``, element-wise over K.
        data_preprocessor (dict, optional): Usually
            ``OneShotDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 matcher: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 neck: OptConfigType = None,
                 query_fusion: str = 'mean',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if query_fusion not in QUERY_FUSIONS:
            raise ValueError(
                f'SiameseTwoStageDetector: query_fusion={query_fusion!r} is '
                f'not supported; use one of {QUERY_FUSIONS}.')
        if test_cfg is None:
            raise ValueError(
                'SiameseTwoStageDetector needs test_cfg with "rpn" and '
                '"rcnn" entries (proposal and detection settings).')
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.matcher = MODELS.build(matcher)
        self.query_fusion = query_fusion

    # ------------------------------------------------------------------
    # features
    # ------------------------------------------------------------------
    def extract_query_feat(self, query: Tensor) -> Tuple[Tensor, ...]:
        """Encode query patches and fuse the K shots of each episode.

        Args:
            query (Tensor): Normalised queries of shape ``(B, K, 3, S, S)``.

        Returns:
            tuple[Tensor]: Per level ``(B, C, h, w)``: one backbone (+ neck)
            pass over the ``B*K`` patches, then ``query_fusion`` over K.
        """
        if query.dim() != 5:
            raise ValueError(
                'extract_query_feat expects queries of shape (B, K, 3, S, S), '
                f'got {tuple(query.shape)}; OneShotDataPreprocessor stacks '
                'them this way.')
        num_episodes, num_shots = query.shape[:2]
        feats = self.extract_feat(query.flatten(0, 1))
        fused = []
        for feat in feats:
            feat = feat.view(num_episodes, num_shots, *feat.shape[1:])
            if self.query_fusion == 'mean':
                fused.append(feat.mean(dim=1))
            else:
                fused.append(feat.max(dim=1).values)
        return tuple(fused)

    def extract_episode_feat(self, batch_inputs: Dict[str, Tensor],
                             batch_data_samples: SampleList) -> EpisodeFeats:
        """Encode targets and queries once each and match them per episode.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)`` from ``OneShotDataPreprocessor``.
            batch_data_samples (list[DetDataSample]): Episode metainfo;
                ``img_id`` and ``query_ann_ids`` let identical inputs share
                one backbone pass.

        Returns:
            EpisodeFeats: matched, target and query features, one row per
            episode.
        """
        img, query = _unpack_inputs(batch_inputs)
        if img.shape[0] != query.shape[0]:
            raise ValueError(
                f'Batch has {img.shape[0]} target images but {query.shape[0]} '
                'query sets; every episode needs one of each.')
        metas = [sample.metainfo for sample in batch_data_samples]
        img_keep, img_inverse = _unique_rows(
            img, [meta.get('img_id') for meta in metas])
        query_keep, query_inverse = _unique_rows(
            query, [_as_key(meta.get('query_ann_ids')) for meta in metas])
        target_feats = _expand(
            self.extract_feat(_select(img, img_keep)), img_inverse)
        query_feats = _expand(
            self.extract_query_feat(_select(query, query_keep)),
            query_inverse)
        matched = tuple(self.matcher(target_feats, query_feats))
        return EpisodeFeats(matched, target_feats, query_feats)

    def _roi_head_kwargs(self, feats: EpisodeFeats) -> dict:
        """Extra keyword arguments for query-aware RoI heads."""
        if getattr(self.roi_head, 'uses_query', False):
            return dict(query_feats=feats.query, target_feats=feats.target)
        return dict()

    # ------------------------------------------------------------------
    # mmdet contract
    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Dict[str, Tensor],
             batch_data_samples: SampleList) -> dict:
        """Losses of the RPN and the RoI head on a batch of episodes.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): ``gt_instances`` hold
                the episode class's boxes with label 0.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_bbox`` and the
            RoI head's losses.
        """
        self._check_gt_labels(batch_data_samples)
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        losses = dict()
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        # The RPN is class-agnostic: its targets are label 0, as in mmdet.
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
            feats.matched, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)
        roi_losses = self.roi_head.loss(feats.matched, rpn_results_list,
                                        batch_data_samples,
                                        **self._roi_head_kwargs(feats))
        losses.update(roi_losses)
        return losses

    def predict(self,
                batch_inputs: Dict[str, Tensor],
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detect the query's class in each episode's target image.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            rescale (bool): Return boxes in original image pixels.
                Defaults to True.

        Returns:
            list[DetDataSample]: The input samples with ``pred_instances``
            (``bboxes`` ``(N, 4)`` xyxy, ``scores`` ``(N,)``, ``labels``
            ``(N,)`` = the episode's ``episode_label``, 0 if absent).
        """
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        rpn_results_list = self.rpn_head.predict(
            feats.matched, batch_data_samples, rescale=False)
        results_list = self.roi_head.predict(
            feats.matched,
            rpn_results_list,
            batch_data_samples,
            rescale=rescale,
            **self._roi_head_kwargs(feats))
        for results, sample in zip(results_list, batch_data_samples):
            label = sample.metainfo.get('episode_label', 0)
            results.labels = torch.full_like(results.labels, int(label))
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Dict[str, Tensor],
                 batch_data_samples: SampleList) -> tuple:
        """Raw head outputs without post-processing (for FLOPs, export).

        Args:
            batch_inputs (dict): ``img`` and ``query`` tensors.
            batch_data_samples (list[DetDataSample]): Episode metainfo.

        Returns:
            tuple: ``(roi_head_outputs,)`` as in mmdet's two-stage
            detectors, computed on the matched maps.
        """
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        rpn_results_list = self.rpn_head.predict(
            feats.matched, batch_data_samples, rescale=False)
        roi_outs = self.roi_head.forward(feats.matched, rpn_results_list,
                                         batch_data_samples,
                                         **self._roi_head_kwargs(feats))
        return (roi_outs, )

    def _check_gt_labels(self, batch_data_samples: SampleList) -> None:
        """Fail clearly when ground truth is not one-foreground-class."""
        num_classes = getattr(
            getattr(self.roi_head, 'bbox_head', None), 'num_classes', 1)
        for sample in batch_data_samples:
            labels = sample.gt_instances.labels
            if labels.numel() and int(labels.max()) >= num_classes:
                meta = sample.metainfo
                raise ValueError(
                    'One-shot episodes have one foreground class: '
                    'gt_instances.labels must be 0 (roi_head num_classes='
                    f'{num_classes}), got labels {labels.unique().tolist()} '
                    f'for episode_id={meta.get("episode_id")}, '
                    f'img_id={meta.get("img_id")}. The dataset should keep '
                    'only the episode class with bbox_label 0.')


def _unpack_inputs(batch_inputs: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
    """Return ``(img, query)`` from the preprocessor's input dict."""
    if not isinstance(batch_inputs, dict) or 'img' not in batch_inputs \
            or 'query' not in batch_inputs:
        got = sorted(batch_inputs) if isinstance(batch_inputs, dict) else \
            type(batch_inputs).__name__
        raise TypeError(
            'SiameseTwoStageDetector expects inputs=dict(img=Tensor '
            f'(B, 3, H, W), query=Tensor (B, K, 3, S, S)), got {got}. Use '
            'OneShotDataPreprocessor as the data_preprocessor.')
    return batch_inputs['img'], batch_inputs['query']


def _as_key(value: object) -> object:
    """Make metainfo hashable-comparable (lists and tensors to tuples)."""
    if isinstance(value, Tensor):
        return tuple(value.flatten().tolist())
    if isinstance(value, (list, tuple)):
        return tuple(_as_key(v) for v in value)
    return value


def _unique_rows(batch: Tensor,
                 keys: Sequence[object]) -> Tuple[Optional[List[int]], Tensor]:
    """Find rows that repeat an earlier row (same key, identical tensor).

    Args:
        batch (Tensor): ``(B, ...)``.
        keys (Sequence): One key per row (``img_id``, ``query_ann_ids``);
            ``None`` means "unknown", never shared. The key only narrows the
            candidates; ``torch.equal`` decides, so two augmentations of one
            image are not mistaken for each other.

    Returns:
        tuple: ``keep`` (row indices to compute, or None when every row is
        unique) and ``inverse`` (LongTensor ``(B,)``: row ``i`` uses
        computed row ``inverse[i]``).
    """
    keep: List[int] = []
    inverse: List[int] = []
    for row, key in enumerate(keys):
        match = None
        if key is not None:
            for slot, kept in enumerate(keep):
                if keys[kept] == key and torch.equal(batch[kept], batch[row]):
                    match = slot
                    break
        if match is None:
            keep.append(row)
            match = len(keep) - 1
        inverse.append(match)
    inverse_t = torch.tensor(inverse, dtype=torch.long, device=batch.device)
    if len(keep) == batch.shape[0]:
        return None, inverse_t
    return keep, inverse_t


def _select(batch: Tensor, keep: Optional[List[int]]) -> Tensor:
    return batch if keep is None else batch[keep]


def _expand(feats: Sequence[Tensor], inverse: Tensor) -> Tuple[Tensor, ...]:
    """Give every episode its row of the deduplicated features."""
    if torch.equal(inverse,
                   torch.arange(len(inverse), device=inverse.device)):
        return tuple(feats)
    return tuple(feat[inverse] for feat in feats)
