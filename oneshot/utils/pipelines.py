"""Config-time helpers for data pipelines.

Configs import these after their ``_base_`` line (mmengine drops imported
functions from the config), so a rule that several configs apply to their
dataset base's pipelines is written once.
"""
from typing import List, Optional, Sequence, Tuple


def with_input_sizes(pipeline: Sequence[dict],
                     target_scale: Optional[Tuple[int, int]],
                     query_size: int) -> List[dict]:
    """A dataset base's pipeline with other target and query sizes.

    Used by the FPN methods' configs (docs/protocol.md, "Input sizes"): the
    dataset bases are written for C4 methods (target short side 600, query
    128).

    - ``Resize``: ``scale=target_scale``, ``keep_ratio=True`` (the target is
      resized *into* ``target_scale``); with ``target_scale=None`` the
      target steps are left as they are and only the query size changes
      (the one-stage configs, which keep the base's target size);
    - ``ResizeQueryPatches``: ``size=query_size``;
    - ``Pad(size=target_scale)`` right before ``PackOneShotInputs``, i.e.
      after flipping, so padding stays bottom-right;
    - every other step unchanged and in place.

    Args:
        pipeline (Sequence[dict]): Transform configs (``type`` keys).
        target_scale (tuple[int, int], optional): ``(w, h)`` the target is
            resized into and padded to; ``None`` keeps the target steps.
        query_size (int): Side of the square query patches.

    Returns:
        list[dict]: The new pipeline (the input is not modified).
    """
    out: List[dict] = []
    for step in pipeline:
        if target_scale is None and step['type'] != 'ResizeQueryPatches':
            out.append(step)
        elif step['type'] == 'Resize':
            out.append(dict(step, scale=target_scale, keep_ratio=True))
        elif step['type'] == 'ResizeQueryPatches':
            out.append(dict(step, size=query_size))
        elif step['type'] == 'PackOneShotInputs':
            out += [dict(type='Pad', size=target_scale), step]
        else:
            out.append(step)
    return out


__all__ = ['with_input_sizes']
