"""The queries a user gives the inferencer: shots, K-shot sets, their
names, and the encoded form that is reused across calls."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .images import ImageLike


@dataclass
class Query:
    """One query shot: an image (path or ``(H, W, 3)`` BGR array) and an
    optional box ``[x1, y1, x2, y2]`` to crop; no box = the whole image."""
    img: ImageLike
    bbox: Optional[Sequence[float]] = None
    name: Optional[str] = None


@dataclass
class QuerySet:
    """The K shots of one query class, fused by the model (K-shot).
    ``patches`` are the shots cropped and resized (``(S, S, 3)`` uint8
    BGR each), filled by :func:`make_query_sets`."""
    shots: List[Query]
    name: str = ''
    patches: List[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class EncodedQueries:
    """Query sets with their features (from
    :meth:`OneShotInferencer.encode`), reusable across calls: pass it as
    ``queries`` to run more targets without re-encoding the queries.
    ``feats[i]`` is set ``i``'s per-level ``(1, C, h, w)`` features."""
    sets: List[QuerySet]
    feats: List[Tuple[torch.Tensor, ...]] = field(repr=False)


def as_query(item, index: str) -> Query:
    """A :class:`Query`, a dict ``{'img': ..., 'bbox': [...], 'name': ...}``
    or a bare path/array as a :class:`Query` (``index`` names it in
    errors)."""
    if isinstance(item, Query):
        return item
    if isinstance(item, dict):
        if 'img' not in item:
            raise ValueError(f'Query #{index}: a dict query needs an '
                             "'img' key (path or array).")
        return Query(item['img'], item.get('bbox'), item.get('name'))
    return Query(item)


def make_query_sets(queries, crop: Callable[[Query, str], np.ndarray]
                    ) -> List[QuerySet]:
    """Normalise the ``queries`` argument of the inferencer and crop every
    shot.

    Accepted: a path or array (one 1-shot query); a :class:`Query`; a
    dict ``{'img': ..., 'bbox': [...]}``; a :class:`QuerySet`; or a list
    of any of these, each item one query. An item that is itself a
    list/tuple of shots is one K-shot query.

    Names: a set's name is its own, else its first shot's ``name``, else
    the first shot's file stem, else ``query<i>``; repeated names get a
    ``_<i>`` suffix (names label the outputs).

    Args:
        queries: See above.
        crop (callable): ``crop(query, index) -> (S, S, 3) patch``, e.g.
            :meth:`InferencePipeline.crop_query`; ``index`` is
            ``'<set>.<shot>'``.

    Returns:
        list[QuerySet]: One per query, with ``patches`` filled in.
    """
    if isinstance(queries, (str, np.ndarray, Query, QuerySet, dict)):
        queries = [queries]
    sets = []
    for i, item in enumerate(queries):
        if isinstance(item, QuerySet):
            qs = QuerySet(list(item.shots), item.name)
        elif isinstance(item, (list, tuple)):
            if not item:
                raise ValueError(f'Query #{i} is an empty list of shots.')
            qs = QuerySet([as_query(s, f'{i}.{k}')
                           for k, s in enumerate(item)])
        else:
            qs = QuerySet([as_query(item, str(i))])
        if not qs.name:
            first = qs.shots[0]
            qs.name = first.name or (
                osp.splitext(osp.basename(first.img))[0]
                if isinstance(first.img, str) else f'query{i}')
        qs.patches = [crop(q, f'{i}.{k}') for k, q in enumerate(qs.shots)]
        sets.append(qs)
    if not sets:
        raise ValueError('No queries given.')
    names = [qs.name for qs in sets]
    for i, qs in enumerate(sets):
        if names.count(qs.name) > 1:
            qs.name = f'{qs.name}_{i}'
    return sets
