"""How the episode's query reaches the box head, once for every method."""
import copy
from typing import Optional, Sequence, Tuple

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import OHEMSampler
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor

PROPOSAL_FEATS = ('target', 'matched')


class QueryAwareRoIHead(StandardRoIHead):
    """Base of the RoI heads that relate every proposal to its query.

    The Siamese detectors pass these heads (``uses_query = True``) two
    keyword arguments after mmdet's ``(x, rpn_results_list,
    batch_data_samples)`` in :meth:`loss`, :meth:`predict` and
    :meth:`forward`: ``query_feats`` (per level ``(B, C, h, w)``, the
    K-fused or matcher-encoded query) and ``target_feats`` (per level
    ``(B, C, H, W)``, the target maps before the matcher); ``x`` are the
    matched maps. This class turns them into

    1. the maps proposals are pooled from (:meth:`_proposal_maps`):
       ``x``, or ``target_feats`` when ``proposal_feats == 'target'``;
    2. the query, encoded once per episode (:meth:`encode_query`,
       ``(B, ...)``: one row per episode, not per proposal);

    and then runs mmdet's own ``StandardRoIHead`` code (proposal
    assignment and sampling, ``bbox_loss``, ``predict_bbox``, ``forward``)
    unchanged. The only mmdet hook that differs is :meth:`_bbox_forward`,
    which takes the encoded query as a third argument and calls
    ``bbox_head(roi_feats (N, ...), query (B, ...), query_inds (N,))``
    (``query_inds = rois[:, 0]``, each RoI's episode). mmdet's code
    reaches it through a per-call view (:class:`_HeadWithQuery`), so the
    query is neither module state nor hidden in the feature tuple.

    A method subclasses this and defines :meth:`encode_query` (and, when
    its box head takes other inputs, :meth:`_bbox_forward`); see
    docs/add_a_method.md. Missing inputs are one error
    (:meth:`_check_episode_inputs`). Mask heads are not supported.

    mmdet's ``OHEMSampler`` works unchanged (``train_cfg.rcnn.sampler``):
    it ranks one episode's proposals by the loss of
    ``context._bbox_forward(feats, rois)``, with ``feats`` that episode's
    maps and every RoI's column 0 equal to 0; the per-call view hands it a
    context whose query is that episode's row (a one-episode view), so
    hard examples are hard *for this query*.

    Attributes:
        proposal_feats (str): ``'matched'`` (default: ``x``) or
            ``'target'`` (``target_feats``).
    """

    uses_query = True
    proposal_feats = 'matched'

    def __init__(self, **kwargs) -> None:
        if kwargs.get('mask_head') is not None:
            raise ValueError(f'{type(self).__name__} has no mask branch; '
                             'remove roi_head.mask_head.')
        super().__init__(**kwargs)

    # ------------------------------------------------------------------
    # what a method defines
    # ------------------------------------------------------------------
    def encode_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """Encode each episode's query once.

        Args:
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.

        Returns:
            Tensor: ``(B, ...)``, row ``i`` for episode ``i``; what
            :meth:`_bbox_forward` hands the box head.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement encode_query(query_feats)')

    def _bbox_forward(self, x: Tuple[Tensor, ...], rois: Tensor,
                      query: Tensor) -> dict:
        """Pool the proposals and relate them to their episode's query.

        Args:
            x (tuple[Tensor]): Maps the proposals are pooled from, per
                level ``(B, C, H, W)``.
            rois (Tensor): ``(N, 5)``, column 0 the episode index.
            query (Tensor): ``(B, ...)`` from :meth:`encode_query`.

        Returns:
            dict: ``cls_score`` ``(N, num_classes + 1)``, ``bbox_pred``
            ``(N, 4)`` and ``bbox_feats`` (the pooled RoI features), as
            mmdet's ``_bbox_forward``.
        """
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred = self.bbox_head(bbox_feats, query,
                                              rois[:, 0].long())
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    # ------------------------------------------------------------------
    # mmdet contract (+ query_feats / target_feats)
    # ------------------------------------------------------------------
    def loss(self,
             x: Tuple[Tensor, ...],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             query_feats: Optional[Sequence[Tensor]] = None,
             target_feats: Optional[Sequence[Tensor]] = None) -> dict:
        """mmdet's assignment, sampling and box losses, query-aware.

        Args:
            x (tuple[Tensor]): Matched maps, per level ``(B, C', H, W)``.
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Ground truth (label 0).
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor], optional): Per level ``(B, C,
                H, W)``; needed when ``proposal_feats == 'target'``.

        Returns:
            dict[str, Tensor]: The box head's losses (``loss_cls``, ``acc``,
            ``loss_bbox``, ...).
        """
        maps, head = self._episode(x, query_feats, target_feats)
        return StandardRoIHead.loss(head, maps, rpn_results_list,
                                    batch_data_samples)

    def predict(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None
                ) -> InstanceList:
        """Score and refine the proposals of each episode.

        Args:
            x (tuple[Tensor]): Matched maps, per level ``(B, C', H, W)``.
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            rescale (bool): Boxes in original image pixels.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor], optional): Per level ``(B, C,
                H, W)``.

        Returns:
            list[InstanceData]: ``bboxes`` ``(n, 4)``, ``scores`` ``(n,)``,
            ``labels`` ``(n,)`` (0; the detector writes the episode label).
        """
        maps, head = self._episode(x, query_feats, target_feats)
        return StandardRoIHead.predict(head, maps, rpn_results_list,
                                       batch_data_samples, rescale)

    def forward(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: Optional[SampleList] = None,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None) -> tuple:
        """Raw ``(cls_score, bbox_pred)`` of every proposal (FLOPs, export).

        Args: as :meth:`predict` (``batch_data_samples`` unused).
        """
        maps, head = self._episode(x, query_feats, target_feats)
        return StandardRoIHead.forward(head, maps, rpn_results_list,
                                       batch_data_samples)

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    def _episode(self, x: Tuple[Tensor, ...],
                 query_feats: Optional[Sequence[Tensor]],
                 target_feats: Optional[Sequence[Tensor]]
                 ) -> Tuple[Tuple[Tensor, ...], '_HeadWithQuery']:
        """Check the inputs, pick the proposal maps, encode the query."""
        self._check_episode_inputs(query_feats, target_feats)
        maps = self._proposal_maps(x, target_feats)
        query = self.encode_query(query_feats)
        if query.shape[0] != maps[0].shape[0]:
            raise ValueError(
                f'{type(self).__name__}: {query.shape[0]} query rows for '
                f'{maps[0].shape[0]} target rows; one query per episode.')
        return maps, _HeadWithQuery(self, query, maps)

    def _proposal_maps(self, x: Tuple[Tensor, ...],
                       target_feats: Optional[Sequence[Tensor]]
                       ) -> Tuple[Tensor, ...]:
        """The maps proposals are pooled from (see ``proposal_feats``)."""
        if self.proposal_feats == 'target':
            return tuple(target_feats)
        return tuple(x)

    def _check_episode_inputs(
            self, query_feats: Optional[Sequence[Tensor]],
            target_feats: Optional[Sequence[Tensor]]) -> None:
        """One error for whatever query-aware input is missing."""
        missing = []
        if query_feats is None or len(query_feats) == 0:
            missing.append('query_feats (per level (B, C, h, w))')
        if self.proposal_feats == 'target' and target_feats is None:
            missing.append('target_feats (per level (B, C, H, W); it pools '
                           "proposals from them, proposal_feats='target')")
        if missing:
            raise ValueError(
                f'{type(self).__name__} is a query-aware RoI head and needs '
                f'{" and ".join(missing)}; run it inside '
                'SiameseTwoStageDetector, which passes query_feats and '
                'target_feats to RoI heads with uses_query = True.')


class _HeadWithQuery:
    """A query-aware RoI head as mmdet's ``StandardRoIHead`` code sees it
    for one batch: ``_bbox_forward(x, rois)`` is the head's
    ``_bbox_forward(x, rois, query)``.

    ``loss``, ``predict`` and ``forward`` of :class:`QueryAwareRoIHead` run
    mmdet's ``StandardRoIHead.loss`` / ``predict`` / ``forward`` on this
    view; the mmdet methods on the way to ``_bbox_forward`` (``bbox_loss``,
    ``predict_bbox``) are bound to it too, and ``bbox_sampler`` is the
    head's, wrapped when it is an OHEM sampler (:class:`_EpisodeOHEM`);
    every other attribute is the head's own. One view per call; it keeps
    nothing.

    Args:
        head (QueryAwareRoIHead): The head.
        query: ``encode_query``'s output, ``(B, ...)``.
        maps (Sequence[Tensor]): The maps proposals are pooled from, per
            level ``(B, C, H, W)`` (the OHEM sampler gets rows of them).
    """

    bbox_loss = StandardRoIHead.bbox_loss
    predict_bbox = StandardRoIHead.predict_bbox

    def __init__(self, head: QueryAwareRoIHead, query: Tensor,
                 maps: Sequence[Tensor]) -> None:
        self._head = head
        self._query = query
        self._maps = maps

    def __getattr__(self, name: str):
        return getattr(self._head, name)

    def _bbox_forward(self, x: Tuple[Tensor, ...], rois: Tensor) -> dict:
        return self._head._bbox_forward(x, rois, self._query)

    @property
    def bbox_sampler(self):
        """The head's sampler; an OHEM sampler sees the episode's query."""
        sampler = self._head.bbox_sampler
        if isinstance(sampler, OHEMSampler):
            return _EpisodeOHEM(sampler, self._query, self._maps)
        return sampler


def select_episode(query, index: int):
    """Row ``index`` of an encoded query, kept 2-D: ``(1, ...)``.

    Args:
        query (Tensor | tuple): What ``encode_query`` returned, ``(B,
            ...)``; a (named) tuple of such tensors is sliced field by field.
        index (int): The episode.
    """
    if isinstance(query, Tensor):
        return query[index:index + 1]
    if isinstance(query, tuple):
        fields = [select_episode(q, index) for q in query]
        return type(query)(*fields) if hasattr(query, '_fields') \
            else tuple(fields)
    raise TypeError(f'encode_query returned {type(query).__name__}; '
                    'expected a (B, ...) Tensor or a tuple of them.')


class _EpisodeOHEM:
    """mmdet's ``OHEMSampler`` for one batch of episodes.

    ``StandardRoIHead.loss`` calls ``sample(..., feats=[lvl[i][None] for
    lvl in x])`` once per episode ``i``; the episode is found from
    ``feats`` itself (``feats[0]`` is a view of row ``i`` of ``x[0]``),
    so nothing depends on the order of the calls. The mining then runs on
    a shallow copy of the sampler whose ``context`` is a one-episode
    :class:`_HeadWithQuery` (query row ``i``).
    """

    def __init__(self, sampler: OHEMSampler, query,
                 maps: Sequence[Tensor]) -> None:
        self._sampler = sampler
        self._query = query
        self._maps = maps

    def __getattr__(self, name: str):
        return getattr(self._sampler, name)

    def sample(self, assign_result, pred_instances, gt_instances,
               feats: Sequence[Tensor] = None, **kwargs):
        if feats is None:
            raise ValueError('OHEMSampler needs feats (the episode\'s maps); '
                             'StandardRoIHead.loss passes them.')
        index = _episode_of(feats[0], self._maps, self._sampler.context)
        sampler = copy.copy(self._sampler)
        # The mining pass sees one episode (RoI column 0 = 0): query row i.
        sampler.context = _HeadWithQuery(
            self._sampler.context, select_episode(self._query, index),
            feats)
        # BaseSampler samples through self.pos_sampler / self.neg_sampler.
        for role in ('pos_sampler', 'neg_sampler'):
            if getattr(self._sampler, role, None) is self._sampler:
                setattr(sampler, role, sampler)
        return sampler.sample(assign_result, pred_instances, gt_instances,
                              feats=feats, **kwargs)


def _episode_of(feat: Tensor, maps: Sequence[Tensor], head) -> int:
    """Which row of ``maps[0]`` ``(B, C, H, W)`` the sampler's ``feat``
    ``(1, C, H, W)`` is (``StandardRoIHead.loss`` passes ``x[0][i][None]``,
    a view of the same memory)."""
    for index in range(maps[0].shape[0]):
        row = maps[0][index]
        if feat.data_ptr() == row.data_ptr() and feat.shape[1:] == row.shape:
            return index
    raise ValueError(
        f'{type(head).__name__}: the OHEM sampler got maps that are no row '
        'of the episode batch; it must be called from StandardRoIHead.loss '
        'with feats=[lvl[i][None] for lvl in x].')


__all__ = ['QueryAwareRoIHead', 'PROPOSAL_FEATS']
