"""Reading the images a user gives the inferencer: a path or an array in,
an ``(H, W, 3)`` uint8 BGR array out, with errors that name the input."""
import os
import os.path as osp
from typing import Iterable, List, Union

import mmcv
import numpy as np

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

ImageLike = Union[str, np.ndarray]


def describe(img: ImageLike, index: object, what: str) -> str:
    """How errors name an input: ``"Target 'a.png'"`` for a path,
    ``'Query #2 (array)'`` for an array."""
    if isinstance(img, str):
        return f'{what} {img!r}'
    return f'{what} #{index} (array)'


def read_image(img: ImageLike, what: str) -> np.ndarray:
    """Read a path or validate an array: ``(H, W, 3)`` uint8 BGR out.

    Grayscale (a file, or an ``(H, W)`` array) is replicated to 3 channels
    and alpha is dropped, so every input reaches the pipeline alike.

    Args:
        img (str | np.ndarray): A file path, or an ``(H, W)``,
            ``(H, W, 3)`` or ``(H, W, 4)`` uint8 BGR(A) array.
        what (str): The input's name in errors (see :func:`describe`).

    Raises:
        FileNotFoundError: No such file. ValueError: the file does not
        decode, or the array has another shape or dtype. TypeError:
        neither a path nor an array.
    """
    if isinstance(img, str):
        if not osp.isfile(img):
            raise FileNotFoundError(f'{what}: no such file {img!r}.')
        try:
            arr = mmcv.imread(img, flag='color')
        except Exception as e:  # cv2 / PIL decoding errors vary
            raise ValueError(f'{what}: cannot decode {img!r} as an image '
                             f'({e}).') from e
        if arr is None:
            raise ValueError(f'{what}: cannot decode {img!r} as an image.')
        return arr
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or min(
                img.shape[:2]) < 1:
            raise ValueError(
                f'{what}: expected an (H, W, 3) BGR array, got shape '
                f'{img.shape}.')
        if img.shape[2] == 4:
            img = img[..., :3]
        if img.dtype != np.uint8:
            raise ValueError(f'{what}: expected a uint8 array, got '
                             f'{img.dtype}.')
        return np.ascontiguousarray(img)
    raise TypeError(f'{what}: expected a file path or a numpy array, got '
                    f'{type(img).__name__}.')


def list_images(folder: str) -> List[str]:
    """Image files directly inside ``folder``, sorted by name."""
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMG_EXTENSIONS))
    if not names:
        raise ValueError(f'Folder {folder!r} holds no images with one of '
                         f'the extensions {IMG_EXTENSIONS}.')
    return [osp.join(folder, n) for n in names]


def resolve_targets(
        targets: Union[ImageLike, Iterable[ImageLike]]) -> List[ImageLike]:
    """The target list of a call: a folder becomes its images (sorted), a
    path or an array a list of one; a list is kept (it must not be
    empty)."""
    if isinstance(targets, str):
        if osp.isdir(targets):
            return list_images(targets)
        return [targets]
    if isinstance(targets, np.ndarray):
        return [targets]
    targets = list(targets)
    if not targets:
        raise ValueError('No target images given.')
    return targets
