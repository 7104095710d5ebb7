"""Drawing one-shot results: detections on the target, the query beside.

Pure numpy/OpenCV. The functions do not care about channel order except for
the two box colours, which are given in BGR (the order of ``cv2.imread``).
"""
from typing import List, Optional, Sequence

import cv2
import numpy as np

DET_COLOR = (0, 220, 0)  # BGR green
GT_COLOR = (0, 140, 255)  # BGR orange
FRAME_COLOR = (255, 255, 255)
TEXT_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Height of the 'query: <class>' strip above a drawn episode.
TITLE_HEIGHT = 20


def _as_bgr_uint8(img: np.ndarray, what: str) -> np.ndarray:
    """A contiguous ``(H, W, 3)`` uint8 copy of ``img`` (grey is expanded,
    floats are clipped to [0, 255])."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
        raise ValueError(f'{what} must be an (H, W, 3) or (H, W) image, got '
                         f'shape {img.shape}.')
    if img.dtype != np.uint8:
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img).copy()


def put_text_fit(img: np.ndarray, text: str, org: tuple, max_width: int,
                 max_scale: float = 0.5) -> None:
    """Write ``text`` at ``org`` (bottom-left corner) in place, white on a
    black box so it reads on any background, shrinking the font so the text
    is at most ``max_width`` pixels wide."""
    scale = max_scale
    (w, _), _ = cv2.getTextSize(text, TEXT_FONT, scale, 1)
    if w > max_width > 0:
        scale = max(0.25, scale * max_width / w)
    (w, h), base = cv2.getTextSize(text, TEXT_FONT, scale, 1)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(img, (x - 1, y - h - 2), (x + w + 1, y + base),
                  (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), TEXT_FONT, scale, FRAME_COLOR, 1,
                cv2.LINE_AA)


def query_thumbnails(query_imgs: Sequence[np.ndarray], side: int,
                     max_height: Optional[int] = None) -> np.ndarray:
    """Stack the query patches as ``side x side`` thumbnails, each framed by
    a 1-pixel white border, top to bottom.

    Args:
        query_imgs (Sequence[np.ndarray]): K patches, ``(h, w, 3)`` uint8.
        side (int): Thumbnail side in pixels.
        max_height (int, optional): Stop before the stack gets taller (at
            least one thumbnail is always kept).

    Returns:
        np.ndarray: ``(n * (side + 2), side + 2, 3)`` uint8, ``n <= K``.
    """
    if len(query_imgs) == 0:
        raise ValueError('query_imgs is empty: a one-shot result needs at '
                         'least one query patch.')
    tiles = []
    for k, q in enumerate(query_imgs):
        if tiles and max_height is not None and \
                (len(tiles) + 1) * (side + 2) > max_height:
            break
        thumb = cv2.resize(_as_bgr_uint8(q, f'query_imgs[{k}]'),
                           (side, side), interpolation=cv2.INTER_AREA)
        tiles.append(cv2.copyMakeBorder(thumb, 1, 1, 1, 1,
                                        cv2.BORDER_CONSTANT,
                                        value=FRAME_COLOR))
    return np.concatenate(tiles, axis=0)


def draw_oneshot_result(target_img: np.ndarray,
                        query_imgs: Sequence[np.ndarray],
                        bboxes: np.ndarray,
                        scores: np.ndarray,
                        gt_bboxes: Optional[np.ndarray] = None,
                        class_name: Optional[str] = None,
                        score_thr: float = 0.3,
                        min_side: int = 320) -> np.ndarray:
    """Draw one episode: detections (green, with scores) and ground truth
    (orange) on the target, the query thumbnails in a black column to its
    left and ``query: <class_name>`` in a black strip above both.

    Nothing is drawn over the target but its boxes: a thumbnail laid over
    a corner of the target would hide the objects there (the episode's own
    ground truth among them).

    Args:
        target_img (np.ndarray): ``(H, W, 3)`` uint8 BGR target image.
        query_imgs (Sequence[np.ndarray]): The K query patches,
            ``(h, w, 3)`` uint8 BGR.
        bboxes (np.ndarray): ``(N, 4)`` detections, xyxy, target pixels.
        scores (np.ndarray): ``(N,)`` detection scores.
        gt_bboxes (np.ndarray, optional): ``(M, 4)`` ground truth, xyxy.
        class_name (str, optional): Written in the strip above.
        score_thr (float): Detections scoring below it are not drawn.
        min_side (int): Targets whose shorter side is smaller are upscaled
            (nearest neighbour) to it so that boxes and text stay legible.

    Returns:
        np.ndarray: ``(T + h, P + w, 3)`` uint8 BGR picture: the drawn
        target of ``h, w = round(H * s), round(W * s)``,
        ``s = max(1, min_side / min(H, W))``, at row ``T`` and column
        ``P``, where ``T = TITLE_HEIGHT`` if ``class_name`` else 0 and
        ``P = query_panel_width(h)``.
    """
    img = _as_bgr_uint8(target_img, 'target_img')
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(bboxes) != len(scores):
        raise ValueError(f'bboxes has {len(bboxes)} boxes but scores has '
                         f'{len(scores)} values; they must match.')
    scale = max(1.0, min_side / min(img.shape[:2]))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST)
    thick = max(1, int(round(min(img.shape[:2]) / 200)))
    if gt_bboxes is not None:
        gt = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
        for x1, y1, x2, y2 in (gt * scale).round().astype(int):
            cv2.rectangle(img, (x1, y1), (x2, y2), GT_COLOR, thick)
    # Lowest scores first so that the best boxes end up on top.
    for i in np.argsort(scores, kind='stable'):
        if scores[i] < score_thr:
            continue
        x1, y1, x2, y2 = (bboxes[i] * scale).round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), DET_COLOR, thick)
        cv2.putText(img, f'{scores[i]:.2f}', (x1 + 2, max(10, y1 - 3)),
                    TEXT_FONT, 0.4 * thick, DET_COLOR, thick)
    panel = make_query_panel(query_imgs, img.shape[0],
                             width=query_panel_width(img.shape[0]))
    picture = np.concatenate([panel, img], axis=1)
    if class_name:
        title = np.zeros((TITLE_HEIGHT, picture.shape[1], 3), np.uint8)
        put_text_fit(title, f'query: {class_name}', (4, TITLE_HEIGHT - 5),
                     picture.shape[1] - 8)
        picture = np.concatenate([title, picture], axis=0)
    return picture


def query_panel_width(height: int) -> int:
    """Width of :func:`draw_oneshot_result`'s query column beside a drawn
    target of ``height`` pixels: a quarter of it, at least 26."""
    return max(26, height // 4 + 2)


def make_query_panel(query_imgs: Sequence[np.ndarray], height: int,
                     class_name: Optional[str] = None,
                     width: Optional[int] = None) -> np.ndarray:
    """A black column of height ``height`` holding the query thumbnails and,
    under them, the class name; to be put beside a drawn target.

    Args:
        query_imgs (Sequence[np.ndarray]): K patches, ``(h, w, 3)`` uint8.
        height (int): Panel height (the target's).
        class_name (str, optional): Written under the thumbnails.
        width (int, optional): Panel width; defaults to
            ``clip(height // 3, 48, height)``.

    Returns:
        np.ndarray: ``(height, width, 3)`` uint8.
    """
    width = width or int(np.clip(height // 3, 48, max(48, height)))
    text_h = 16 if class_name else 0
    panel = np.zeros((height, width, 3), np.uint8)
    side = max(8, min(width - 2, height - text_h - 2))
    thumbs = query_thumbnails(query_imgs, side,
                              max_height=height - text_h)
    th = min(thumbs.shape[0], height)
    panel[:th, :thumbs.shape[1]] = thumbs[:th]
    if class_name:
        put_text_fit(panel, class_name, (2, min(height - 4, th + 12)),
                     width - 4, max_scale=0.4)
    return panel


def make_result_grid(images: List[np.ndarray], ncols: int,
                     pad: int = 4) -> np.ndarray:
    """Tile pictures row by row into a white grid.

    Args:
        images (list[np.ndarray]): ``(h_i, w_i, 3)`` uint8 pictures; each
            cell is as large as the largest one, pictures sit top-left.
        ncols (int): Columns (clipped to ``[1, len(images)]``).
        pad (int): White margin between and around cells.

    Returns:
        np.ndarray: ``(rows * (h + pad) + pad, cols * (w + pad) + pad, 3)``
        uint8, ``rows = ceil(len(images) / cols)``.
    """
    if not images:
        raise ValueError('make_result_grid needs at least one image')
    images = [_as_bgr_uint8(im, f'images[{k}]')
              for k, im in enumerate(images)]
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    ncols = max(1, min(ncols, len(images)))
    nrows = (len(images) + ncols - 1) // ncols
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3),
                   255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + im.shape[0], x:x + im.shape[1]] = im
    return grid
