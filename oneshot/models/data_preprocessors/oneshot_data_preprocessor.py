"""Data preprocessor for one-shot episodes: a target image plus K queries."""
from typing import List, Optional, Sequence, Union

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class OneShotDataPreprocessor(DetDataPreprocessor):
    """Normalise and batch one-shot episodes (targets and query patches).

    The target images go through :class:`DetDataPreprocessor` unchanged
    (channel flip, mean/std, padding to ``pad_size_divisor``, batch
    augments, ``batch_input_shape`` / ``pad_shape`` metainfo), so any
    detector config written for mmdet keeps its meaning. The query patches
    get the same channel flip and mean/std and are stacked; they are never
    padded or batch-augmented because the pipeline already resized them to a
    fixed ``S x S`` (``ResizeQueryPatches``).

    Input (collated by ``pseudo_collate``, see ``docs/data_flow.md`` §3)::

        dict(inputs=dict(img=[uint8 (3, H_i, W_i), ...],
                         query=[uint8 (K, 3, S, S), ...]),
             data_samples=[DetDataSample, ...])

    Output::

        dict(inputs=dict(img=float (B, 3, H, W), query=float (B, K, 3, S, S)),
             data_samples=[DetDataSample, ...])

    Args: as :class:`mmdet.models.data_preprocessors.DetDataPreprocessor`.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess a collated batch of episodes.

        Args:
            data (dict): ``inputs`` (dict with ``img`` and ``query``) and
                ``data_samples`` from the dataloader.
            training (bool): Whether batch augments apply. Defaults to False.

        Returns:
            dict: ``inputs=dict(img=Tensor (B, 3, H, W), query=Tensor
            (B, K, 3, S, S))`` and the updated ``data_samples``.
        """
        inputs = data.get('inputs')
        if not isinstance(inputs, dict) or 'img' not in inputs \
                or 'query' not in inputs:
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs)
            raise TypeError(
                'OneShotDataPreprocessor expects data["inputs"] to be '
                'dict(img=..., query=...) as produced by PackOneShotInputs, '
                f'got {got}. Check that the pipeline ends with '
                'PackOneShotInputs.')
        data_samples = data.get('data_samples')
        # The target path is exactly mmdet's, including batch augments that
        # may rescale images and boxes; queries do not depend on it.
        target = super().forward(
            dict(inputs=inputs['img'], data_samples=data_samples),
            training=training)
        query = self._preprocess_queries(inputs['query'], data_samples)
        return dict(
            inputs=dict(img=target['inputs'], query=query),
            data_samples=target['data_samples'])

    def preprocess_targets(self, data: dict, training: bool = False) -> dict:
        """Preprocess target images alone (``inputs`` is a list of uint8
        ``(3, H, W)`` tensors), exactly as :meth:`forward` does for the
        ``img`` part; used by the inferencer to encode a target once."""
        return super().forward(data, training=training)

    def preprocess_queries(self, queries: Union[Tensor, Sequence[Tensor]]
                           ) -> Tensor:
        """Preprocess query patches alone: ``B`` uint8 ``(K, 3, S, S)``
        tensors -> float ``(B, K, 3, S, S)`` on the model's device, exactly
        as :meth:`forward` does for the ``query`` part."""
        return self._preprocess_queries(queries, None)

    def _preprocess_queries(self, queries: Union[Tensor, Sequence[Tensor]],
                            data_samples: Optional[list]) -> Tensor:
        """Cast, channel-flip, normalise and stack the query patches.

        Args:
            queries (Tensor | list[Tensor]): ``B`` tensors of shape
                ``(K, 3, S, S)`` or one tensor ``(B, K, 3, S, S)``.
            data_samples (list[DetDataSample], optional): Used only to name
                episodes in error messages.

        Returns:
            Tensor: float queries of shape ``(B, K, 3, S, S)``.
        """
        if isinstance(queries, Tensor):
            queries = list(queries)
        queries = [self.cast_data(q) for q in queries]
        shapes = [tuple(q.shape) for q in queries]
        for i, shape in enumerate(shapes):
            if len(shape) != 4 or shape[1] != 3:
                raise ValueError(
                    f'Query of {_episode_name(data_samples, i)} has shape '
                    f'{shape}; expected (K, 3, S, S). PackOneShotInputs '
                    'should stack the K query patches of an episode.')
        if len(set(shapes)) > 1:
            listing = ', '.join(
                f'{_episode_name(data_samples, i)}: K={s[0]}, S={s[2:]}'
                for i, s in enumerate(shapes))
            raise ValueError(
                'All episodes in a batch need the same number of queries K '
                f'and query size S, got {listing}. Use one '
                'ResizeQueryPatches(size=...) and one shot count per '
                'dataset.')
        processed: List[Tensor] = []
        for q in queries:
            if self._channel_conversion:
                q = q[:, [2, 1, 0], ...]
            # Cast after the flip, as mmengine does for images.
            q = q.float()
            if self._enable_normalize:
                # mean/std are (3, 1, 1) buffers; they broadcast over K.
                q = (q - self.mean) / self.std
            processed.append(q)
        return torch.stack(processed, dim=0)


def _episode_name(data_samples: Optional[list], index: int) -> str:
    """Describe batch element ``index`` for error messages."""
    if data_samples is None or index >= len(data_samples):
        return f'batch element {index}'
    meta = data_samples[index].metainfo
    parts = [f'batch element {index}']
    for key in ('episode_id', 'img_id', 'img_path', 'query_ann_ids'):
        if key in meta:
            parts.append(f'{key}={meta[key]}')
    return '(' + ', '.join(parts) + ')'
