"""The episode contract shared by the Siamese one-shot detectors.

An *episode* is one target image and K query patches of one class. The
detectors (:class:`SiameseTwoStageDetector`,
:class:`SiameseSingleStageDetector`) are mmdet detectors plus this contract,
held once here in :class:`SiameseEpisodeMixin`:

- Inputs: ``inputs=dict(img=(B, 3, H, W), query=(B, K, 3, S, S))`` from
  ``OneShotDataPreprocessor``, one row per episode, and one
  ``DetDataSample`` per episode (``img_id`` and ``query_ann_ids`` metainfo
  let identical targets / query sets share one backbone pass).
- Ground truth: the episode class's boxes with label 0 (heads are
  class-agnostic, ``num_classes=1``); anything else is an error naming the
  episode.
- Features: one backbone (+ neck) pass per distinct target and per
  distinct query set, the K shots fused by ``query_fusion``, then
  ``matcher(target_feats, query_feats)``
  (:class:`~oneshot.models.matchers.BaseMatcher`) ->
  :class:`EpisodeFeats`.
- Heads: mmdet's own ``loss`` / ``predict`` / ``_forward`` of the mmdet
  base class run unchanged on the matched maps (:class:`_MatchedDetector`):
  the RPN or dense head sees ``EpisodeFeats.matched``, the RoI head
  ``EpisodeFeats.roi``. A RoI head whose class sets ``uses_query = True``
  (every :class:`~oneshot.models.roi_heads.QueryAwareRoIHead` does) also
  gets ``query_feats=EpisodeFeats.query`` and
  ``target_feats=EpisodeFeats.target`` in ``loss``, ``predict`` and
  ``forward``; stock mmdet heads get neither.
- Outputs: ``pred_instances`` per episode with ``labels`` = the episode's
  ``episode_label`` metainfo (0 if absent).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.utils import ConfigType
from torch import Tensor

# MatcherOutput is re-exported: it lived here before oneshot.models.matchers
# held the matcher interface, and tests import it from this module.
from ..matchers.base import MatcherOutput, as_matcher_output  # noqa: F401

QUERY_FUSIONS = ('mean', 'max')


class EpisodeFeats(NamedTuple):
    """Features of a batch of episodes, one row per episode.

    Attributes:
        matched (tuple[Tensor]): Matcher output per level, ``(B, C', H, W)``;
            what the RPN (or dense head) sees.
        target (tuple[Tensor]): Backbone/neck target features per level,
            ``(B, C, H, W)``, before matching.
        query (tuple[Tensor]): Query features per level, ``(B, C, h, w)``,
            fused over the K shots (possibly re-encoded by the matcher).
        roi (tuple[Tensor]): Maps the RoI head sees (``matched`` unless the
            matcher returned separate ones).
    """
    matched: Tuple[Tensor, ...]
    target: Tuple[Tensor, ...]
    query: Tuple[Tensor, ...]
    roi: Tuple[Tensor, ...]


class SiameseEpisodeMixin:
    """The episode contract (module docstring) on top of an mmdet detector.

    A detector mixes it in before its mmdet base class and says three
    things: ``mmdet_base`` (that class, whose ``loss`` / ``predict`` /
    ``_forward`` run on the matched maps), ``test_cfg_help`` (what its
    ``test_cfg`` must hold) and :meth:`episode_head` (which head's
    ``num_classes`` the ground truth must respect).

    Work is shared across episodes of a batch (docs/data_flow.md,
    "Performance"): episodes whose target images have the same ``img_id``
    metainfo and an identical input tensor run the backbone once; episodes
    whose queries have the same ``query_ann_ids`` and identical tensors run
    it once too.
    Results equal running the episodes one by one (with the backbone's BN
    layers in eval mode, as ``norm_eval=True`` keeps them).

    Args:
        matcher (dict): Matcher config
            (:class:`~oneshot.models.matchers.BaseMatcher`).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``, element-wise over K.
        query_align_loss (dict, optional): A training-only auxiliary loss
            on the target and query features before the matcher (e.g.
            :class:`~oneshot.models.losses.QueryAlignmentLoss`), called as
            ``loss(target_feats, query_feats, data_samples) -> dict``.
            Defaults to None (the papers' methods have none).
        **kwargs: The mmdet base class's arguments (``backbone``, ``neck``,
            heads, ``train_cfg``, ``test_cfg`` (required),
            ``data_preprocessor``, ``init_cfg``).
    """

    mmdet_base: type
    test_cfg_help: str = ''

    def __init__(self,
                 matcher: ConfigType,
                 query_fusion: str = 'mean',
                 query_align_loss: Optional[ConfigType] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if query_fusion not in QUERY_FUSIONS:
            raise ValueError(
                f'{name}: query_fusion={query_fusion!r} is not supported; '
                f'use one of {QUERY_FUSIONS}.')
        if kwargs.get('test_cfg') is None:
            raise ValueError(f'{name} needs test_cfg {self.test_cfg_help}.')
        super().__init__(**kwargs)
        self.matcher = MODELS.build(matcher)
        self.query_fusion = query_fusion
        self.query_align_loss = (MODELS.build(query_align_loss)
                                 if query_align_loss is not None else None)

    def episode_head(self) -> Tuple[str, int]:
        """``(config name, num_classes)`` of the head the ground truth is
        for (e.g. ``('roi_head', 1)``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------
    # mmdet contract on episodes
    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Dict[str, Tensor],
             batch_data_samples: SampleList) -> dict:
        """Losses of the mmdet base class's heads on a batch of episodes.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): ``gt_instances`` hold
                the episode class's boxes with label 0.

        Returns:
            dict[str, Tensor]: As mmdet's ``loss`` of ``mmdet_base`` (for
            the two-stage detector ``loss_rpn_cls``, ``loss_rpn_bbox`` and
            the RoI head's losses; for FCOS ``loss_cls``, ``loss_bbox``,
            ``loss_centerness``), plus ``loss_query_align`` with a
            ``query_align_loss``.
        """
        self._check_gt_labels(batch_data_samples)
        target_feats, query_feats = self.encode_episodes(
            batch_inputs, batch_data_samples)
        feats = self.match(target_feats, query_feats)
        losses = self.mmdet_base.loss(
            _MatchedDetector(self, feats), feats, batch_data_samples)
        if self.query_align_loss is not None:
            losses.update(self.query_align_loss(
                target_feats, query_feats, batch_data_samples))
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
        return self.predict_matched(feats, batch_data_samples, rescale)

    def predict_matched(self,
                        feats: EpisodeFeats,
                        batch_data_samples: SampleList,
                        rescale: bool = True) -> SampleList:
        """Heads and post-processing on already matched features.

        :meth:`predict` is :meth:`extract_episode_feat` followed by this;
        the inferencer calls it with cached target and query features
        (:meth:`predict_with_feats`).
        """
        samples = self.mmdet_base.predict(
            _MatchedDetector(self, feats), feats, batch_data_samples,
            rescale=rescale)
        for sample in samples:
            # Heads are class-agnostic: write the episode's class.
            label = int(sample.metainfo.get('episode_label', 0))
            sample.pred_instances.labels = torch.full_like(
                sample.pred_instances.labels, label)
        return samples

    def _forward(self,
                 batch_inputs: Dict[str, Tensor],
                 batch_data_samples: Optional[SampleList] = None) -> tuple:
        """Raw head outputs without post-processing (FLOPs, export).

        Args:
            batch_inputs (dict): ``img`` and ``query`` tensors.
            batch_data_samples (list[DetDataSample], optional): Episode
                metainfo; None: every episode is encoded on its own (a
                two-stage detector's RPN still needs ``img_shape``).

        Returns:
            tuple: mmdet's ``_forward`` of ``mmdet_base`` on the matched
            maps (two-stage: ``(roi_head_outputs,)``; FCOS: per-level
            ``cls_scores``, ``bbox_preds``, ``centernesses``).
        """
        if batch_data_samples is None and isinstance(batch_inputs, dict) \
                and 'img' in batch_inputs:
            batch_data_samples = [
                DetDataSample() for _ in range(len(batch_inputs['img']))
            ]
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        return self.mmdet_base._forward(
            _MatchedDetector(self, feats), feats, batch_data_samples)

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
        """Encode targets and queries once each and match them per episode
        (:meth:`encode_episodes`, then :meth:`match`).

        Returns:
            EpisodeFeats: matched, target and query features, one row per
            episode.
        """
        return self.match(
            *self.encode_episodes(batch_inputs, batch_data_samples))

    def encode_episodes(
            self, batch_inputs: Dict[str, Tensor],
            batch_data_samples: SampleList
    ) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        """Encode targets and queries once each, one row per episode.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)`` from ``OneShotDataPreprocessor``.
            batch_data_samples (list[DetDataSample]): Episode metainfo;
                ``img_id`` and ``query_ann_ids`` let identical inputs share
                one backbone pass.

        Returns:
            tuple: ``(target_feats, query_feats)``, per level
            ``(B, C, H, W)`` and ``(B, C, h, w)`` (K-fused).
        """
        img, query = _unpack_inputs(batch_inputs, type(self).__name__)
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
        return target_feats, query_feats

    def match(self, target_feats: Tuple[Tensor, ...],
              query_feats: Tuple[Tensor, ...]) -> EpisodeFeats:
        """Run the matcher and normalise its output to :class:`EpisodeFeats`.

        A matcher returns either per-level tensors (the same maps feed the
        proposal stage and the RoI head) or a :class:`MatcherOutput` when
        the two stages see different maps (CoAE: the RPN sees the
        co-attended target, the RoI head the co-excited one) or when it
        re-encodes the query for the RoI head.
        """
        out = as_matcher_output(
            self.matcher(target_feats, query_feats), query_feats)
        return EpisodeFeats(out.rpn, target_feats, out.query, out.roi)

    def predict_with_feats(self,
                           target_feats: Sequence[Tensor],
                           query_feats: Sequence[Tensor],
                           batch_data_samples: SampleList,
                           rescale: bool = True) -> SampleList:
        """Predict episodes from precomputed target and query features.

        The cached inference path: ``target_feats`` from
        :meth:`extract_feat` and ``query_feats`` from
        :meth:`extract_query_feat`, already one row per episode (expand a
        cached target to the number of queries with ``feat.expand``).
        Equal to :meth:`predict` on the same images.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            batch_data_samples (list[DetDataSample]): One per episode, with
                the target's ``img_shape``, ``scale_factor`` and
                ``ori_shape`` metainfo.
            rescale (bool): Boxes in original image pixels.

        Returns:
            list[DetDataSample]: With ``pred_instances``.
        """
        feats = self.match(tuple(target_feats), tuple(query_feats))
        return self.predict_matched(feats, batch_data_samples, rescale)

    def _check_gt_labels(self, batch_data_samples: SampleList) -> None:
        """Fail clearly when ground truth is not one-foreground-class."""
        head_name, num_classes = self.episode_head()
        for sample in batch_data_samples:
            labels = sample.gt_instances.labels
            if labels.numel() and int(labels.max()) >= num_classes:
                meta = sample.metainfo
                raise ValueError(
                    'One-shot episodes have one foreground class: '
                    f'gt_instances.labels must be 0 ({head_name} num_classes='
                    f'{num_classes}), got labels {labels.unique().tolist()} '
                    f'for episode_id={meta.get("episode_id")}, '
                    f'img_id={meta.get("img_id")}. The dataset should keep '
                    'only the episode class with bbox_label 0.')


class _EpisodeRoIHead:
    """A RoI head as mmdet's detector code calls it, fed an episode batch.

    mmdet's two-stage ``loss`` / ``predict`` / ``_forward`` call
    ``roi_head.loss(x, ...)`` etc. with ``x`` the maps the RPN saw. This
    passes ``EpisodeFeats.roi`` instead and, to heads with
    ``uses_query = True``, ``query_feats`` and ``target_feats``; any other
    attribute is the head's own.
    """

    def __init__(self, head, feats: EpisodeFeats) -> None:
        self._head = head
        self._roi = feats.roi
        self._kwargs = dict(query_feats=feats.query,
                            target_feats=feats.target) \
            if getattr(head, 'uses_query', False) else dict()

    def __getattr__(self, name: str):
        return getattr(self._head, name)

    def loss(self, x: Tuple[Tensor, ...], rpn_results_list: list,
             batch_data_samples: SampleList) -> dict:
        return self._head.loss(self._roi, rpn_results_list,
                               batch_data_samples, **self._kwargs)

    def predict(self, x: Tuple[Tensor, ...], rpn_results_list: list,
                batch_data_samples: SampleList,
                rescale: bool = False) -> list:
        return self._head.predict(self._roi, rpn_results_list,
                                  batch_data_samples, rescale=rescale,
                                  **self._kwargs)

    def forward(self, x: Tuple[Tensor, ...], rpn_results_list: list,
                batch_data_samples: Optional[SampleList] = None) -> tuple:
        return self._head.forward(self._roi, rpn_results_list,
                                  batch_data_samples, **self._kwargs)


class _MatchedDetector:
    """The detector as its mmdet base class's methods see one batch.

    mmdet's ``loss`` / ``predict`` / ``_forward`` (two-stage and
    single-stage) start with ``x = self.extract_feat(batch_inputs)`` and
    hand ``x`` to the heads. Called on this view (``mmdet_base.loss(view,
    feats, samples)``) they run unchanged on an episode batch:
    ``extract_feat`` returns the matched maps, ``roi_head`` is an
    :class:`_EpisodeRoIHead`, and every other attribute (heads, configs,
    ``add_pred_to_datasample``) is the detector's own. One view per call;
    it keeps nothing.
    """

    def __init__(self, detector: SiameseEpisodeMixin,
                 feats: EpisodeFeats) -> None:
        self._detector = detector
        self._feats = feats

    def __getattr__(self, name: str):
        return getattr(self._detector, name)

    def extract_feat(self, feats: EpisodeFeats) -> Tuple[Tensor, ...]:
        return feats.matched

    @property
    def roi_head(self) -> _EpisodeRoIHead:
        return _EpisodeRoIHead(self._detector.roi_head, self._feats)


def _unpack_inputs(batch_inputs: Dict[str, Tensor],
                   owner: str) -> Tuple[Tensor, Tensor]:
    """Return ``(img, query)`` from the preprocessor's input dict; errors
    name ``owner`` (the detector class)."""
    if not isinstance(batch_inputs, dict) or 'img' not in batch_inputs \
            or 'query' not in batch_inputs:
        got = sorted(batch_inputs) if isinstance(batch_inputs, dict) else \
            type(batch_inputs).__name__
        raise TypeError(
            f'{owner} expects inputs=dict(img=Tensor '
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
