"""Procedural one-shot detection data of many fine-grained glyph classes.

Every class is one character (a *glyph*): 229 classes from nine Unicode
scripts and symbol blocks, 149 seen (Latin letters, digits, ASCII/Latin-1
signs, arrows, math operators, geometric shapes) and 80 unseen (Greek,
Cyrillic, miscellaneous symbols such as chess pieces, card suits and
dice). The split is by block: no unseen class shares its script or block
with a seen one, so the unseen classes test whether a detector compares the
query's shape with the target's objects rather than recognising classes it
was trained on.

Instances are rasterised (Pillow) from the TrueType fonts that ship with
matplotlib (``matplotlib/mpl-data/fonts/ttf``): DejaVu Sans, Serif and Sans
Mono and STIX General, each regular, bold, slanted and bold slanted, plus
six Computer Modern fonts for the Latin letters and digits (their other
code points are TeX-encoded). A class is drawn only in fonts whose
character map has it (at least :data:`MIN_FONTS` do), so no instance is a
missing-glyph box. Every instance gets a random font, an affine jitter
(rotation, shear, aspect, size 1/8 to 1/3 of the image), stroke noise
(thicker or thinner strokes, speckle, blur) and a **random colour that is
independent of its class** (in 30% of the images all objects share a
two-colour palette), on the muted clutter of
:mod:`oneshot.datasets.synthetic`. Each image holds 2-4 classes, one pair of
which comes from the same block and is among the most similar classes of
that block (a look-alike distractor).

The characters were chosen to be visually distinct classes: characters
that render (nearly) identically in most fonts, modulo the scale, aspect
and mirroring that the jitter and flip augmentation apply, were left out
(Latin ``O`` / digit ``0`` / Greek ``Ο``, ``l`` / ``I``, ``c`` / ``C``,
``b`` / ``d``, Greek and Cyrillic letters shaped like Latin ones, ``→`` /
``←``, ...). ``tests/test_glyphs.py`` checks that no two classes are
near-identical in the fonts they share.

::

    from oneshot.datasets.glyphs import generate_glyph_dataset
    generate_glyph_dataset('data/glyphs')  # 4000 train, 600 val images
"""
import functools
import os
import os.path as osp
import string
import unicodedata
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .synthetic import (_background, _balanced_picker, _is_complete,
                        _random_colour, _random_picker, _write_coco_split,
                        train_class_pool)


class GlyphBlock(NamedTuple):
    """A script or symbol block: its characters, the code-point range they
    come from and whether its classes are unseen."""
    name: str
    chars: str
    first: int
    last: int
    unseen: bool


BLOCKS: Tuple[GlyphBlock, ...] = (
    # Lower-case letters that equal their capital up to scale (c o s v w x
    # z), mirror images (d of b, p of q) and l (like I) are left out.
    GlyphBlock('latin', string.ascii_uppercase + 'abefghijkmnqrtuy', 0x41,
               0x7A, False),
    GlyphBlock('digit', '123456789', 0x30, 0x39, False),  # 0 is like O
    GlyphBlock('punct', '#$%&*?@\u00a2\u00a3\u00a4\u00a5\u00a7\u00a9\u00ae'
               '\u00b1\u00b6\u00f7', 0x20, 0xFF, False),
    # One arrow of each mirror pair (-> but not <-).
    GlyphBlock('arrow', '\u2192\u2191\u2193\u2194\u2195\u2197\u2198\u219b'
               '\u21a0\u21a3\u21a6\u21aa\u21af\u21b5\u21bb\u21c4\u21c5'
               '\u21c9\u21d1\u21d2\u21d4\u21dd\u21e7\u21e8', 0x2190, 0x21FF,
               False),
    GlyphBlock('math', '\u2200\u2202\u2205\u2207\u2208\u2209\u221a\u221e'
               '\u2220\u2221\u222b\u222c\u222e\u2245\u2248\u2260'
               '\u2264\u226a\u2282\u2286\u2295\u2296\u2297\u229b'
               '\u229e\u22a0\u22a5\u22a2\u22a8\u22c8', 0x2200, 0x22FF,
               False),
    GlyphBlock('geometric', '\u25a0\u25a1\u25a3\u25a4\u25a5\u25a6\u25a7'
               '\u25a9\u25b2\u25b6\u25bc\u25c6\u25c7\u25c8\u25c9\u25cd'
               '\u25ce\u25cf\u25d0\u25d2\u25d4\u25d5\u25d8\u25d9\u25e7'
               '\u25e9\u25ed', 0x25A0, 0x25FF, False),
    # Greek and Cyrillic letters that differ from Latin ones and from each
    # other (no Alpha, Omicron, Cyrillic A, E, ..., Pi / Pe, Phi / Ef).
    GlyphBlock('greek', '\u0393\u0394\u0398\u039b\u039e\u03a0\u03a3\u03a6'
               '\u03a8\u03a9\u03b1\u03b2\u03b3\u03b4\u03b6\u03b7\u03bb'
               '\u03bc\u03be\u03c3\u03c2\u03c4\u03c9', 0x370, 0x3FF,
               True),
    GlyphBlock('cyrillic', '\u0411\u0414\u0416\u0426\u0427\u0428\u0429'
               '\u042a\u042b\u042e\u0402\u0409\u040a\u040b\u0490\u0462'
               '\u046a\u04d8\u0496\u049a\u04a2\u0466\u0431', 0x400, 0x4FF,
               True),
    # Chess pieces, card suits, dice, stars, signs and notes.
    GlyphBlock('misc-symbol', '\u2654\u2655\u2656\u2657\u2658\u2659\u265a'
               '\u265b\u265c\u265d\u265e\u265f\u2660\u2661\u2663\u2664'
               '\u2665\u2667\u2682\u2683\u2685\u2605\u2606\u2600\u260e'
               '\u262f\u263a\u263b\u2693\u2699\u26a0\u266a\u266b\u2620',
               0x2600, 0x26FF, True),
)
"""The class blocks in class order (``chars`` in class order within)."""

FONT_FILES: Tuple[str, ...] = (
    'DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf',
    'DejaVuSans-BoldOblique.ttf', 'DejaVuSerif.ttf', 'DejaVuSerif-Bold.ttf',
    'DejaVuSerif-Italic.ttf', 'DejaVuSerif-BoldItalic.ttf',
    'DejaVuSansMono.ttf', 'DejaVuSansMono-Bold.ttf',
    'DejaVuSansMono-Oblique.ttf', 'DejaVuSansMono-BoldOblique.ttf',
    'STIXGeneral.ttf', 'STIXGeneralBol.ttf', 'STIXGeneralItalic.ttf',
    'STIXGeneralBolIta.ttf', 'cmr10.ttf', 'cmb10.ttf', 'cmss10.ttf',
    'cmti10.ttf', 'cmtt10.ttf', 'cmmi10.ttf')
"""The fonts glyphs are drawn in, looked for in matplotlib's font folder."""
TEX_FONTS = frozenset(f for f in FONT_FILES if f.startswith('cm'))
"""Fonts with a TeX encoding: used for ASCII letters and digits only."""
MIN_FONTS = 3
"""Every class must be rendered by at least this many fonts."""
RENDER_SIZE = 80
"""Font size (pixels) of the cached glyph masks instances are warped from."""
MISSING_CHAR = '\U0010fffd'
"""A code point no font has: renders as the font's missing-glyph box."""
LOOK_ALIKES = 5
"""Look-alike distractors come from the most similar classes of a block."""
# Bumped whenever the pictures or annotations for a given seed change, so
# that ``skip_existing`` regenerates data written by an older generator.
GENERATOR_VERSION = 1


def _slug(char: str) -> str:
    """Readable ASCII name of ``char``: the letter or digit itself for
    ASCII, the letter's name (capitalised for capitals) for Greek and
    Cyrillic, the lower-case Unicode name otherwise."""
    if char in string.ascii_letters + string.digits:
        return char
    name = unicodedata.name(char)
    for script in ('GREEK ', 'CYRILLIC '):
        if name.startswith(script):
            case, _, letter = name[len(script):].partition(' LETTER ')
            letter = letter.lower().replace(' ', '-')
            return letter.capitalize() if case == 'CAPITAL' else letter
    return name.lower().replace(' ', '-')


def _class_table() -> List[Tuple[str, str, str]]:
    return [(f'{b.name}-{ord(c):04X}-{_slug(c)}', c, b.name)
            for b in BLOCKS for c in b.chars]


GLYPH_CLASSES: List[str] = [name for name, _, _ in _class_table()]
"""All class names in category-id order: ``<block>-<code point>-<name>``,
e.g. ``latin-0041-A``, ``greek-03BB-lamda``, ``arrow-2192-rightwards-arrow``.
"""
GLYPH_CHARS: Dict[str, str] = {n: c for n, c, _ in _class_table()}
"""Class name -> its character."""
GLYPH_BLOCKS: Dict[str, str] = {n: b for n, _, b in _class_table()}
"""Class name -> its block (the COCO ``supercategory``)."""


def glyph_classes() -> List[str]:
    """All class names in category-id order (see :data:`GLYPH_CLASSES`)."""
    return list(GLYPH_CLASSES)


def glyph_split(
        unseen_blocks: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
    """Seen and unseen class names, split by block.

    Seen: the Latin, digit, punct, arrow, math and geometric blocks (149
    classes); unseen: the Greek, Cyrillic and misc-symbol blocks (80).

    Args:
        unseen_blocks (Sequence[str], optional): Other blocks to hold out
            instead (names of :data:`BLOCKS`), for analysis splits such as
            ``configs/quickstart/*-cyrillic-seen.py``; default the blocks
            marked unseen.

    Returns:
        dict: ``seen`` and ``unseen``, lists of names in
        :func:`glyph_classes` order.
    """
    if unseen_blocks is None:
        unseen_blocks = {b.name for b in BLOCKS if b.unseen}
    else:
        names = [b.name for b in BLOCKS]
        unknown = sorted(set(unseen_blocks) - set(names))
        if unknown or not unseen_blocks:
            raise ValueError(f'unseen_blocks {list(unseen_blocks)}: give one '
                             f'or more of the glyph blocks {names}.')
        unseen_blocks = set(unseen_blocks)
    unseen = [n for n in GLYPH_CLASSES if GLYPH_BLOCKS[n] in unseen_blocks]
    seen = [n for n in GLYPH_CLASSES if GLYPH_BLOCKS[n] not in unseen_blocks]
    return dict(seen=seen, unseen=unseen)


def default_font_dir() -> str:
    """matplotlib's bundled TrueType folder (``mpl-data/fonts/ttf``)."""
    import matplotlib
    return osp.join(matplotlib.get_data_path(), 'fonts', 'ttf')


def find_fonts(font_dir: Optional[str] = None) -> List[str]:
    """Paths of the :data:`FONT_FILES` present in ``font_dir``.

    Args:
        font_dir (str, optional): Folder to search. Defaults to
            :func:`default_font_dir`.

    Returns:
        list[str]: Font paths in :data:`FONT_FILES` order.

    Raises:
        FileNotFoundError: None of the fonts is in ``font_dir``.
    """
    font_dir = default_font_dir() if font_dir is None else font_dir
    paths = [osp.join(font_dir, f) for f in FONT_FILES
             if osp.isfile(osp.join(font_dir, f))]
    if not paths:
        raise FileNotFoundError(
            f'No glyph fonts found in {font_dir!r} (searched for '
            f'{", ".join(FONT_FILES[:4])}, ...; they ship with matplotlib '
            f'in mpl-data/fonts/ttf).')
    return paths


@functools.lru_cache(maxsize=None)
def _charmap(font_path: str) -> frozenset:
    from matplotlib.ft2font import FT2Font
    return frozenset(FT2Font(font_path).get_charmap())


@functools.lru_cache(maxsize=None)
def _font(font_path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path, size)


def font_has_char(font_path: str, char: str) -> bool:
    """Whether the font's character map has ``char`` (TeX-encoded fonts:
    ASCII letters and digits only)."""
    if (osp.basename(font_path) in TEX_FONTS
            and char not in string.ascii_letters + string.digits):
        return False
    return ord(char) in _charmap(font_path)


def render_glyph(font_path: str, char: str,
                 size: int = RENDER_SIZE) -> Optional[np.ndarray]:
    """Anti-aliased coverage of ``char`` in one font, cropped to its ink.

    Args:
        font_path (str): TrueType file.
        char (str): One character.
        size (int): Font size in pixels.

    Returns:
        np.ndarray | None: ``uint8`` (H, W) coverage, 255 = ink, cropped
        to the non-zero pixels; None if the glyph draws nothing.
    """
    side = 3 * size
    canvas = Image.new('L', (side, side), 0)
    ImageDraw.Draw(canvas).text((side / 2, side / 2), char, fill=255,
                                font=_font(font_path, size), anchor='mm')
    cover = np.asarray(canvas)
    ys, xs = np.nonzero(cover)
    if not len(xs) or not (cover >= 128).any():
        return None
    return cover[ys.min():ys.max() + 1, xs.min():xs.max() + 1].copy()


def _same_mask(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> bool:
    return (a is not None and b is not None and a.shape == b.shape
            and float(np.abs(a.astype(int) - b).mean()) < 2.0)


def _descriptor(mask: np.ndarray) -> np.ndarray:
    """Scale- and aspect-free shape vector: the mask squeezed to 24 x 24,
    blurred, zero-mean, unit norm."""
    d = cv2.resize(mask.astype(np.float32), (24, 24),
                   interpolation=cv2.INTER_AREA)
    d = cv2.GaussianBlur(d, (0, 0), 0.7).ravel()
    d -= d.mean()
    return d / (np.linalg.norm(d) + 1e-6)


class _Bank(NamedTuple):
    """The fonts' file names; per class its ``(font, mask)`` pairs and the
    other classes of its block, most similar first."""
    fonts: Tuple[str, ...]
    masks: Tuple[Tuple[Tuple[str, np.ndarray], ...], ...]
    similar: Tuple[Tuple[int, ...], ...]


@functools.lru_cache(maxsize=4)
def _load_bank(font_dir: str) -> _Bank:
    """Render every class in every font of ``font_dir`` that has it (once
    per process and folder)."""
    paths = find_fonts(font_dir)
    missing = {p: render_glyph(p, MISSING_CHAR) for p in paths}
    masks = []
    for name in GLYPH_CLASSES:
        char = GLYPH_CHARS[name]
        found = []
        for path in paths:
            if not font_has_char(path, char):
                continue
            mask = render_glyph(path, char)
            if mask is None or _same_mask(mask, missing[path]):
                continue
            mask.setflags(write=False)
            found.append((osp.basename(path), mask))
        if len(found) < MIN_FONTS:
            raise RuntimeError(
                f'Only {len(found)} of the fonts in {font_dir!r} render glyph '
                f'class {name} (U+{ord(char):04X}); {MIN_FONTS} are needed.')
        masks.append(tuple(found))
    desc = np.stack([np.mean([_descriptor(m) for _, m in found], 0)
                     for found in masks])
    # Rounded, so that round-off does not reorder near ties.
    sim = np.round(desc @ desc.T, 4)
    blocks = [GLYPH_BLOCKS[n] for n in GLYPH_CLASSES]
    similar = []
    for i, block in enumerate(blocks):
        same = [j for j in range(len(blocks)) if blocks[j] == block and j != i]
        similar.append(tuple(sorted(same, key=lambda j: (-sim[i, j], j))))
    return _Bank(tuple(osp.basename(p) for p in paths), tuple(masks),
                 tuple(similar))


def glyph_bank(font_dir: Optional[str] = None
               ) -> List[List[Tuple[str, np.ndarray]]]:
    """The cached glyph masks every instance is warped from.

    Args:
        font_dir (str, optional): Font folder. Defaults to
            :func:`default_font_dir`.

    Returns:
        list: Per class (in :func:`glyph_classes` order) the
        ``(font file name, mask)`` pairs of every font that renders it;
        masks as in :func:`render_glyph`, read-only.

    Raises:
        FileNotFoundError: No font was found in ``font_dir``.
        RuntimeError: A class is rendered by fewer than :data:`MIN_FONTS`
            fonts.
    """
    bank = _load_bank(osp.abspath(default_font_dir() if font_dir is None
                                  else font_dir))
    return [list(found) for found in bank.masks]


def _warp_glyph(src: np.ndarray, obj: float,
                rng: np.random.Generator) -> np.ndarray:
    """One instance's coverage (``uint8``): ``src`` rotated, sheared,
    stretched and scaled to about ``obj`` pixels, with stroke noise."""
    theta = rng.uniform(-0.26, 0.26)  # +-15 degrees
    shear = rng.uniform(-0.25, 0.25)
    stretch = np.sqrt(rng.uniform(0.75, 1.33))
    rot = np.array([[np.cos(theta), -np.sin(theta)],
                    [np.sin(theta), np.cos(theta)]])
    lin = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(
        [stretch, 1.0 / stretch])
    h, w = src.shape
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
    extent = np.ptp(corners @ lin.T, axis=0)
    scale = obj / extent.max()
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(src, (sw, sh), interpolation=(
        cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR))
    out_w, out_h = (np.ceil(extent * scale) + 6).astype(int)
    centre_in = np.array([(sw - 1) / 2, (sh - 1) / 2])
    centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    affine = np.hstack([lin, (centre_out - lin @ centre_in)[:, None]])
    cover = cv2.warpAffine(small, affine, (int(out_w), int(out_h)),
                           flags=cv2.INTER_LINEAR)
    # Stroke noise: thicker or thinner strokes, speckle, blur.
    kernel = np.ones((2, 2), np.uint8)
    r = rng.random()
    if r < 0.2:
        cover = cv2.dilate(cover, kernel)
    elif r < 0.4 and obj >= 30:
        thin = cv2.erode(cover, kernel)
        if (thin >= 128).sum() >= 0.6 * (cover >= 128).sum():
            cover = thin
    if rng.random() < 0.3:
        holes = rng.random(cover.shape) < rng.uniform(0.01, 0.05)
        cover = np.where(holes, cover // 3, cover).astype(np.uint8)
    if rng.random() < 0.3:
        cover = cv2.GaussianBlur(cover, (0, 0), rng.uniform(0.4, 0.9))
    # Thin strokes scaled down fade: embolden them (as hinting does) until
    # most of the ink lies in pixels at least half covered.
    for _ in range(3):
        if (cover >= 128).sum() >= 0.7 * cover.sum(dtype=np.int64) / 255:
            break
        cover = np.minimum(cover * 1.6, 255).astype(np.uint8)
    return cover


def _paste(img: np.ndarray, cover: np.ndarray, x0: int, y0: int,
           colour: Tuple[int, int, int], rng: np.random.Generator) -> None:
    """Blend ``colour`` (plus per-pixel noise) into ``img`` with opacity
    ``cover`` placed at ``(x0, y0)`` (clipped to the image)."""
    size_y, size_x = img.shape[:2]
    h, w = cover.shape
    ix1, iy1 = max(0, x0), max(0, y0)
    ix2, iy2 = min(size_x, x0 + w), min(size_y, y0 + h)
    alpha = cover[iy1 - y0:iy2 - y0, ix1 - x0:ix2 - x0, None] / 255.0
    paint = np.asarray(colour, np.float64) + rng.normal(
        0, rng.uniform(0, 12), alpha.shape[:2] + (3,))
    roi = img[iy1:iy2, ix1:ix2].astype(np.float64)
    img[iy1:iy2, ix1:ix2] = np.clip(
        roi * (1 - alpha) + paint * alpha + 0.5, 0, 255).astype(np.uint8)


def _look_alike(classes: List[int], pool: List[int], similar: Sequence,
                rng: np.random.Generator,
                uses: Optional[np.ndarray] = None
                ) -> Tuple[int, Optional[int]]:
    """(anchor, look-alike): a class of ``classes`` and one of the
    :data:`LOOK_ALIKES` classes of ``pool`` most similar to it in its block
    that is not in ``classes`` (None if no class has one). With ``uses``
    (images per class so far), the least used of those."""
    allowed = set(pool) - set(classes)
    options = []
    for cls in classes:
        near = [c for c in similar[cls] if c in allowed][:LOOK_ALIKES]
        if near:
            options.append((cls, near))
    if not options:
        return classes[0], None
    anchor, near = options[int(rng.integers(len(options)))]
    if uses is not None:
        fewest = uses[near].min()
        near = [c for c in near if uses[c] == fewest]
    return anchor, int(near[int(rng.integers(len(near)))])


def _render_image(size: int, rng: np.random.Generator, min_obj: int,
                  max_obj: int, pool: List[int],
                  pick: Callable[[int], List[int]], bank: _Bank,
                  uses: Optional[np.ndarray] = None
                  ) -> Tuple[np.ndarray, list]:
    """One image and its objects ``[(class_index, [x, y, w, h], area)]``:
    2-4 classes of ``pool``, all but one chosen by ``pick(n)``, the last a
    look-alike of one of them (the least used so far if ``uses``, images
    per class, is given; it is updated)."""
    img = _background(size, rng)
    num = min(len(pool), int(rng.integers(2, 5)))
    chosen = pick(num - 1)
    anchor, extra = _look_alike(chosen, pool, bank.similar, rng, uses)
    if extra is None:  # a restricted pool without look-alikes
        rest = [c for c in pool if c not in chosen]
        extra = int(rest[int(rng.integers(len(rest)))])
    # The look-alike pair first, so that both are placed.
    classes = [anchor, extra] + [c for c in chosen if c != anchor]
    palette = ([_random_colour(rng), _random_colour(rng)]
               if rng.random() < 0.3 else None)
    copies = [1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)
              for _ in classes]
    # One instance of every class, then the repeats.
    order = classes + [c for c, n in zip(classes, copies)
                       for _ in range(n - 1)]
    placed: List[Tuple[int, int, int, int]] = []
    objects = []
    for cls in order:
        fonts = bank.masks[cls]
        src = fonts[int(rng.integers(len(fonts)))][1]
        obj = rng.uniform(min_obj, max_obj)
        cover = _warp_glyph(src, obj, rng)
        ys, xs = np.nonzero(cover >= 128)
        if not len(xs):
            continue
        bx, by = xs.min(), ys.min()
        bw, bh = xs.max() + 1 - bx, ys.max() + 1 - by
        if max(bw, bh) < 0.6 * obj or bw > size - 2 or bh > size - 2:
            continue  # most of the glyph faded (or it does not fit)
        for _try in range(20):
            x = int(rng.integers(1, size - bw))
            y = int(rng.integers(1, size - bh))
            # No overlap: boxes at least 2 pixels apart.
            if all(x >= px + pw + 2 or px >= x + bw + 2 or y >= py + ph + 2
                   or py >= y + bh + 2 for px, py, pw, ph in placed):
                break
        else:
            continue
        placed.append((x, y, int(bw), int(bh)))
        colour = (palette[int(rng.integers(2))] if palette
                  else _random_colour(rng))
        _paste(img, cover, x - int(bx), y - int(by), colour, rng)
        objects.append((int(cls), [x, y, int(bw), int(bh)], int(len(xs))))
    if uses is not None:
        uses[sorted({obj[0] for obj in objects})] += 1
    return img, objects


def _write_split(out_dir: str, name: str, num_images: int, size: int,
                 rng: np.random.Generator, params: dict, pool: List[int],
                 balanced: bool, bank: _Bank) -> str:
    """Render ``num_images`` images into ``out_dir/name/`` and write
    ``out_dir/annotations/name.json``; returns the json path."""
    pick = (_balanced_picker if balanced else _random_picker)(pool, rng)
    # Balanced: the look-alikes, too, go to the classes with fewest images.
    uses = np.zeros(len(GLYPH_CLASSES), np.int64) if balanced else None
    min_obj, max_obj = max(12, size // 8), max(20, size * 11 // 32)
    categories = [
        dict(id=i + 1, name=n, supercategory=GLYPH_BLOCKS[n],
             codepoint=f'U+{ord(GLYPH_CHARS[n]):04X}')
        for i, n in enumerate(GLYPH_CLASSES)
    ]
    return _write_coco_split(
        out_dir, name, num_images, size,
        lambda: _render_image(size, rng, min_obj, max_obj, pool, pick, bank,
                              uses),
        'oneshot synthetic glyphs, colour carries no class', params,
        categories)


def generate_glyph_dataset(out_dir: str,
                           num_train: int = 4000,
                           num_val: int = 600,
                           image_size: int = 160,
                           seed: int = 0,
                           skip_existing: bool = True,
                           classes: Optional[Sequence[str]] = None,
                           font_dir: Optional[str] = None,
                           train_classes: str = 'all') -> Dict[str, str]:
    """Write the glyph dataset in COCO format.

    Layout: ``out_dir/{train,val}/*.png`` (``000000.png``, ...) and
    ``out_dir/annotations/{train,val}.json``; image ids start at 1,
    category ids ``1..N`` follow :func:`glyph_classes` (``supercategory``:
    the block, ``codepoint``: ``'U+XXXX'``). Every drawn glyph is annotated
    (``bbox`` xywh tight around its pixels of coverage >= 50%, ``area``
    their count, ``iscrowd`` 0); objects do not overlap. Which classes are
    seen or unseen is the dataset's business (:func:`glyph_split`). Val
    images take their classes in turn from groups of 8 classes (see
    ``oneshot.datasets.synthetic._balanced_picker``), so every class has
    about the same number of val images. Deterministic in ``seed`` (local
    ``numpy.random.Generator`` s; global RNGs are untouched).

    Args:
        out_dir (str): Dataset root.
        num_train (int): Training images (>= 0).
        num_val (int): Validation/test images (>= 0).
        image_size (int): Side of the square images (>= 64); glyphs are
            about ``image_size / 8`` to ``image_size / 3`` pixels (20-55
            at 160).
        seed (int): Generation seed (the val split uses ``seed + 1``).
        skip_existing (bool): Keep an existing dataset whose jsons record
            the same parameters (in ``info``) and whose images exist,
            instead of writing it again.
        classes (Sequence[str], optional): Draw only these classes (the
            json still lists all categories). Defaults to all.
        font_dir (str, optional): Folder holding the :data:`FONT_FILES`.
            Defaults to matplotlib's (:func:`default_font_dir`).
        train_classes (str): ``'all'`` (default): the train images draw
            every class of the pool, as the val images do; ``'seen'``:
            only the seen classes of :func:`glyph_split`. Unlike on the
            synthetic shapes, seen-only train images did not lift the
            unseen AP50 here (docs/protocol.md), so the default stays.

    Returns:
        dict: ``train_ann``, ``val_ann`` (json paths), ``train_img_dir``,
        ``val_img_dir``.

    Raises:
        ValueError: A size or count is out of range, or ``classes`` names
            an unknown class or fewer than two classes.
        FileNotFoundError: No font was found in ``font_dir``.
        RuntimeError: A class is rendered by fewer than :data:`MIN_FONTS`
            fonts.
    """
    for arg, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f'{arg} must be an integer >= 0, got {value!r}.')
    if not isinstance(image_size, (int, np.integer)) or image_size < 64:
        raise ValueError(f'image_size must be an integer >= 64 (glyphs are '
                         f'1/8 to 1/3 of it), got {image_size!r}.')
    if classes is None:
        pool = list(range(len(GLYPH_CLASSES)))
    else:
        if isinstance(classes, str):
            classes = [classes]
        unknown = [c for c in classes if c not in GLYPH_CHARS]
        if unknown:
            raise ValueError(
                f'Unknown glyph classes {unknown}; names are '
                f'"<block>-<code point>-<name>" as in glyph_classes(), e.g. '
                f'{GLYPH_CLASSES[0]!r}.')
        pool = sorted({GLYPH_CLASSES.index(c) for c in classes})
        if len(pool) < 2:
            raise ValueError(f'classes must name at least 2 distinct classes '
                             f'(images hold 2-4 classes), got {classes}.')
    train_pool = train_class_pool(pool, GLYPH_CLASSES, glyph_split()['seen'],
                                  train_classes)
    paths = dict(
        train_ann=osp.join(out_dir, 'annotations', 'train.json'),
        val_ann=osp.join(out_dir, 'annotations', 'val.json'),
        train_img_dir=osp.join(out_dir, 'train'),
        val_img_dir=osp.join(out_dir, 'val'))
    font_dir = osp.abspath(default_font_dir() if font_dir is None
                           else font_dir)
    params = dict(version=GENERATOR_VERSION, num_train=int(num_train),
                  num_val=int(num_val), image_size=int(image_size),
                  seed=int(seed), classes=pool, train_classes=train_pool,
                  fonts=[osp.basename(p) for p in find_fonts(font_dir)])
    if skip_existing and all(
            _is_complete(paths[f'{name}_ann'], paths[f'{name}_img_dir'],
                         params) for name in ('train', 'val')):
        return paths
    bank = _load_bank(font_dir)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    # Separate streams: the val images do not depend on num_train.
    _write_split(out_dir, 'train', int(num_train), int(image_size),
                 np.random.default_rng(seed), params, train_pool,
                 balanced=False, bank=bank)
    _write_split(out_dir, 'val', int(num_val), int(image_size),
                 np.random.default_rng(seed + 1), params, pool,
                 balanced=True, bank=bank)
    return paths
