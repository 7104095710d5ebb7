"""Episode feature extraction shared by the Siamese one-shot detectors.

:class:`SiameseEpisodeMixin` holds what the two-stage and the single-stage
detectors have in common: one backbone (+ neck) pass per distinct target
image and per distinct query set of a batch, fusion of the K shots, the
matcher call, and the ground-truth check. Detectors mix it in before their
mmdet base class and set ``self.matcher`` and ``self.query_fusion``.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmdet.structures import SampleList
from torch import Tensor

QUERY_FUSIONS = ('mean', 'max')


class MatcherOutput(NamedTuple):
    """What a matcher may return instead of plain per-level tensors.

    Attributes:
        rpn (tuple[Tensor]): Per level ``(B, C', H, W)``: the maps the
            proposal stage (RPN, or the dense head of a single-stage
            detector) sees.
        roi (tuple[Tensor], optional): Maps the RoI head sees; ``None``
            means the same as ``rpn``.
        query (tuple[Tensor], optional): Query features handed to
            query-aware RoI heads; ``None`` means the backbone's query
            features unchanged.
    """
    rpn: Tuple[Tensor, ...]
    roi: Optional[Tuple[Tensor, ...]] = None
    query: Optional[Tuple[Tensor, ...]] = None


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


def check_query_fusion(owner: str, query_fusion: str) -> None:
    if query_fusion not in QUERY_FUSIONS:
        raise ValueError(
            f'{owner}: query_fusion={query_fusion!r} is not supported; use '
            f'one of {QUERY_FUSIONS}.')


class SiameseEpisodeMixin:
    """Shared-backbone episode encoding for one-shot detectors.

    Work is shared across episodes of a batch (docs/data_flow.md,
    "Performance"): episodes whose target images have the same ``img_id``
    metainfo and an identical input tensor run the backbone once; episodes
    whose queries have the same ``query_ann_ids`` and identical tensors run
    it once too.
    Results equal running the episodes one by one (with the backbone's BN
    layers in eval mode, as ``norm_eval=True`` keeps them).
    """

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
        return self.match(target_feats, query_feats)

    def match(self, target_feats: Tuple[Tensor, ...],
              query_feats: Tuple[Tensor, ...]) -> EpisodeFeats:
        """Run the matcher and normalise its output to :class:`EpisodeFeats`.

        A matcher returns either per-level tensors (the same maps feed the
        proposal stage and the RoI head) or a :class:`MatcherOutput` when
        the two stages see different maps (CoAE: the RPN sees the
        co-attended target, the RoI head the co-excited one) or when it
        re-encodes the query for the RoI head.
        """
        out = self.matcher(target_feats, query_feats)
        if isinstance(out, MatcherOutput):
            rpn = tuple(out.rpn)
            roi = rpn if out.roi is None else tuple(out.roi)
            query = query_feats if out.query is None else tuple(out.query)
        else:
            rpn = roi = tuple(out)
            query = query_feats
        return EpisodeFeats(rpn, target_feats, query, roi)

    def _roi_head_kwargs(self, feats: EpisodeFeats) -> dict:
        """Extra keyword arguments for query-aware RoI heads."""
        if getattr(self.roi_head, 'uses_query', False):
            return dict(query_feats=feats.query, target_feats=feats.target)
        return dict()

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

    def predict_matched(self, feats: EpisodeFeats,
                        batch_data_samples: SampleList,
                        rescale: bool = True) -> SampleList:
        """Heads and post-processing on matched features (per detector)."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement predict_matched(feats, '
            'batch_data_samples, rescale) to support cached inference.')

    def add_episode_predictions(self, batch_data_samples: SampleList,
                                results_list: list) -> SampleList:
        """Write each episode's ``episode_label`` into its predicted labels
        (heads are class-agnostic) and attach ``pred_instances``."""
        for results, sample in zip(results_list, batch_data_samples):
            label = sample.metainfo.get('episode_label', 0)
            results.labels = torch.full_like(results.labels, int(label))
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _check_gt_labels(self, batch_data_samples: SampleList) -> None:
        """Fail clearly when ground truth is not one-foreground-class."""
        head_name = 'roi_head' if getattr(self, 'roi_head', None) \
            is not None else 'bbox_head'
        head = getattr(self, head_name, None)
        num_classes = getattr(head, 'num_classes', None)
        if num_classes is None:
            num_classes = getattr(
                getattr(head, 'bbox_head', None), 'num_classes', 1)
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
