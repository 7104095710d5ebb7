"""Drawing one-shot results: detections on the target, the query beside."""
from typing import List, Optional, Sequence

import cv2
import numpy as np

DET_COLOR = (0, 220, 0)  # BGR
GT_COLOR = (0, 140, 255)
FRAME_COLOR = (255, 255, 255)


def draw_oneshot_result(target_img: np.ndarray,
                        query_imgs: Sequence[np.ndarray],
                        bboxes: np.ndarray,
                        scores: np.ndarray,
                        gt_bboxes: Optional[np.ndarray] = None,
                        class_name: Optional[str] = None,
                        score_thr: float = 0.3,
                        min_side: int = 320) -> np.ndarray:
    """Draw one episode.

    Args:
        target_img (np.ndarray): ``(H, W, 3)`` uint8 BGR target image.
        query_imgs (Sequence[np.ndarray]): The K query patches, BGR.
        bboxes (np.ndarray): ``(N, 4)`` detections, xyxy, target pixels.
        scores (np.ndarray): ``(N,)`` detection scores.
        gt_bboxes (np.ndarray, optional): ``(M, 4)`` ground truth (drawn
            dashed-free in orange).
        class_name (str, optional): Written above the query thumbnail.
        score_thr (float): Detections below it are not drawn.
        min_side (int): Small targets are upscaled to this shorter side so
            that boxes and text stay legible.

    Returns:
        np.ndarray: ``(H', W', 3)`` uint8 BGR picture.
    """
    img = np.ascontiguousarray(target_img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    scale = max(1.0, min_side / min(img.shape[:2]))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST)
    else:
        img = img.copy()
    thick = max(1, int(round(min(img.shape[:2]) / 200)))
    if gt_bboxes is not None:
        for box in np.asarray(gt_bboxes).reshape(-1, 4) * scale:
            x1, y1, x2, y2 = box.round().astype(int)
            cv2.rectangle(img, (x1, y1), (x2, y2), GT_COLOR, thick)
    bboxes = np.asarray(bboxes).reshape(-1, 4)
    scores = np.asarray(scores).reshape(-1)
    for box, score in zip(bboxes * scale, scores):
        if score < score_thr:
            continue
        x1, y1, x2, y2 = box.round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), DET_COLOR, thick)
        cv2.putText(img, f'{score:.2f}', (x1 + 2, max(10, y1 - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, DET_COLOR, thick)
    # Query thumbnails stacked in the top-left corner.
    side = max(24, min(img.shape[:2]) // 4)
    y = 0
    for q in query_imgs:
        thumb = cv2.resize(np.ascontiguousarray(q), (side, side))
        if y + side + 2 > img.shape[0]:
            break
        img[y:y + side + 2, 0:side + 2] = FRAME_COLOR
        img[y + 1:y + side + 1, 1:side + 1] = thumb
        y += side + 2
    if class_name:
        cv2.putText(img, f'query: {class_name}', (side + 6, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, FRAME_COLOR, 2)
        cv2.putText(img, f'query: {class_name}', (side + 6, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return img


def make_result_grid(images: List[np.ndarray], ncols: int,
                     pad: int = 4) -> np.ndarray:
    """Tile pictures into a grid (each padded to the largest size)."""
    if not images:
        raise ValueError('make_result_grid needs at least one image')
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
