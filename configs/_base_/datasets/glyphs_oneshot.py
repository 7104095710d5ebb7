# The project's glyph one-shot data (tools/data/generate_glyphs.py):
# 160x160 images of 229 fine-grained character classes (Latin, digits,
# signs, arrows, math operators and geometric shapes seen; Greek, Cyrillic
# and miscellaneous symbols unseen), each instance in a random font, affine
# jitter and random colour, so colour carries no class information. Train
# on seen-class episodes; val/test on unseen classes (episode_classes='seen'
# or 'all' to change that).
# Pipelines, loaders and evaluator: those of synthetic_oneshot.py.
_base_ = ['./synthetic_oneshot.py']
data_root = 'data/glyphs/'

# The names are those of oneshot.datasets.glyphs.glyph_split()
# (tests/test_glyphs.py checks they agree): <block>-<code point>-<name>.
seen_classes = [
    # latin (42)
    'latin-0041-A', 'latin-0042-B', 'latin-0043-C', 'latin-0044-D',
    'latin-0045-E', 'latin-0046-F', 'latin-0047-G', 'latin-0048-H',
    'latin-0049-I', 'latin-004A-J', 'latin-004B-K', 'latin-004C-L',
    'latin-004D-M', 'latin-004E-N', 'latin-004F-O', 'latin-0050-P',
    'latin-0051-Q', 'latin-0052-R', 'latin-0053-S', 'latin-0054-T',
    'latin-0055-U', 'latin-0056-V', 'latin-0057-W', 'latin-0058-X',
    'latin-0059-Y', 'latin-005A-Z', 'latin-0061-a', 'latin-0062-b',
    'latin-0065-e', 'latin-0066-f', 'latin-0067-g', 'latin-0068-h',
    'latin-0069-i', 'latin-006A-j', 'latin-006B-k', 'latin-006D-m',
    'latin-006E-n', 'latin-0071-q', 'latin-0072-r', 'latin-0074-t',
    'latin-0075-u', 'latin-0079-y',
    # digit (9)
    'digit-0031-1', 'digit-0032-2', 'digit-0033-3', 'digit-0034-4',
    'digit-0035-5', 'digit-0036-6', 'digit-0037-7', 'digit-0038-8',
    'digit-0039-9',
    # punct (17)
    'punct-0023-number-sign', 'punct-0024-dollar-sign',
    'punct-0025-percent-sign', 'punct-0026-ampersand', 'punct-002A-asterisk',
    'punct-003F-question-mark', 'punct-0040-commercial-at',
    'punct-00A2-cent-sign', 'punct-00A3-pound-sign',
    'punct-00A4-currency-sign', 'punct-00A5-yen-sign',
    'punct-00A7-section-sign', 'punct-00A9-copyright-sign',
    'punct-00AE-registered-sign', 'punct-00B1-plus-minus-sign',
    'punct-00B6-pilcrow-sign', 'punct-00F7-division-sign',
    # arrow (24)
    'arrow-2192-rightwards-arrow', 'arrow-2191-upwards-arrow',
    'arrow-2193-downwards-arrow', 'arrow-2194-left-right-arrow',
    'arrow-2195-up-down-arrow', 'arrow-2197-north-east-arrow',
    'arrow-2198-south-east-arrow', 'arrow-219B-rightwards-arrow-with-stroke',
    'arrow-21A0-rightwards-two-headed-arrow',
    'arrow-21A3-rightwards-arrow-with-tail',
    'arrow-21A6-rightwards-arrow-from-bar',
    'arrow-21AA-rightwards-arrow-with-hook',
    'arrow-21AF-downwards-zigzag-arrow',
    'arrow-21B5-downwards-arrow-with-corner-leftwards',
    'arrow-21BB-clockwise-open-circle-arrow',
    'arrow-21C4-rightwards-arrow-over-leftwards-arrow',
    'arrow-21C5-upwards-arrow-leftwards-of-downwards-arrow',
    'arrow-21C9-rightwards-paired-arrows', 'arrow-21D1-upwards-double-arrow',
    'arrow-21D2-rightwards-double-arrow', 'arrow-21D4-left-right-double-arrow',
    'arrow-21DD-rightwards-squiggle-arrow', 'arrow-21E7-upwards-white-arrow',
    'arrow-21E8-rightwards-white-arrow',
    # math (30)
    'math-2200-for-all', 'math-2202-partial-differential',
    'math-2205-empty-set', 'math-2207-nabla', 'math-2208-element-of',
    'math-2209-not-an-element-of', 'math-221A-square-root',
    'math-221E-infinity', 'math-2220-angle', 'math-2221-measured-angle',
    'math-222B-integral', 'math-222C-double-integral',
    'math-222E-contour-integral', 'math-2245-approximately-equal-to',
    'math-2248-almost-equal-to', 'math-2260-not-equal-to',
    'math-2264-less-than-or-equal-to', 'math-226A-much-less-than',
    'math-2282-subset-of', 'math-2286-subset-of-or-equal-to',
    'math-2295-circled-plus', 'math-2296-circled-minus',
    'math-2297-circled-times', 'math-229B-circled-asterisk-operator',
    'math-229E-squared-plus', 'math-22A0-squared-times', 'math-22A5-up-tack',
    'math-22A2-right-tack', 'math-22A8-true', 'math-22C8-bowtie',
    # geometric (27)
    'geometric-25A0-black-square', 'geometric-25A1-white-square',
    'geometric-25A3-white-square-containing-black-small-square',
    'geometric-25A4-square-with-horizontal-fill',
    'geometric-25A5-square-with-vertical-fill',
    'geometric-25A6-square-with-orthogonal-crosshatch-fill',
    'geometric-25A7-square-with-upper-left-to-lower-right-fill',
    'geometric-25A9-square-with-diagonal-crosshatch-fill',
    'geometric-25B2-black-up-pointing-triangle',
    'geometric-25B6-black-right-pointing-triangle',
    'geometric-25BC-black-down-pointing-triangle',
    'geometric-25C6-black-diamond', 'geometric-25C7-white-diamond',
    'geometric-25C8-white-diamond-containing-black-small-diamond',
    'geometric-25C9-fisheye', 'geometric-25CD-circle-with-vertical-fill',
    'geometric-25CE-bullseye', 'geometric-25CF-black-circle',
    'geometric-25D0-circle-with-left-half-black',
    'geometric-25D2-circle-with-lower-half-black',
    'geometric-25D4-circle-with-upper-right-quadrant-black',
    'geometric-25D5-circle-with-all-but-upper-left-quadrant-black',
    'geometric-25D8-inverse-bullet', 'geometric-25D9-inverse-white-circle',
    'geometric-25E7-square-with-left-half-black',
    'geometric-25E9-square-with-upper-left-diagonal-half-black',
    'geometric-25ED-up-pointing-triangle-with-left-half-black',
]
unseen_classes = [
    # greek (23)
    'greek-0393-Gamma', 'greek-0394-Delta', 'greek-0398-Theta',
    'greek-039B-Lamda', 'greek-039E-Xi', 'greek-03A0-Pi', 'greek-03A3-Sigma',
    'greek-03A6-Phi', 'greek-03A8-Psi', 'greek-03A9-Omega', 'greek-03B1-alpha',
    'greek-03B2-beta', 'greek-03B3-gamma', 'greek-03B4-delta',
    'greek-03B6-zeta', 'greek-03B7-eta', 'greek-03BB-lamda', 'greek-03BC-mu',
    'greek-03BE-xi', 'greek-03C3-sigma', 'greek-03C2-final-sigma',
    'greek-03C4-tau', 'greek-03C9-omega',
    # cyrillic (23)
    'cyrillic-0411-Be', 'cyrillic-0414-De', 'cyrillic-0416-Zhe',
    'cyrillic-0426-Tse', 'cyrillic-0427-Che', 'cyrillic-0428-Sha',
    'cyrillic-0429-Shcha', 'cyrillic-042A-Hard-sign', 'cyrillic-042B-Yeru',
    'cyrillic-042E-Yu', 'cyrillic-0402-Dje', 'cyrillic-0409-Lje',
    'cyrillic-040A-Nje', 'cyrillic-040B-Tshe', 'cyrillic-0490-Ghe-with-upturn',
    'cyrillic-0462-Yat', 'cyrillic-046A-Big-yus', 'cyrillic-04D8-Schwa',
    'cyrillic-0496-Zhe-with-descender', 'cyrillic-049A-Ka-with-descender',
    'cyrillic-04A2-En-with-descender', 'cyrillic-0466-Little-yus',
    'cyrillic-0431-be',
    # misc-symbol (34)
    'misc-symbol-2654-white-chess-king', 'misc-symbol-2655-white-chess-queen',
    'misc-symbol-2656-white-chess-rook', 'misc-symbol-2657-white-chess-bishop',
    'misc-symbol-2658-white-chess-knight', 'misc-symbol-2659-white-chess-pawn',
    'misc-symbol-265A-black-chess-king', 'misc-symbol-265B-black-chess-queen',
    'misc-symbol-265C-black-chess-rook', 'misc-symbol-265D-black-chess-bishop',
    'misc-symbol-265E-black-chess-knight', 'misc-symbol-265F-black-chess-pawn',
    'misc-symbol-2660-black-spade-suit', 'misc-symbol-2661-white-heart-suit',
    'misc-symbol-2663-black-club-suit', 'misc-symbol-2664-white-spade-suit',
    'misc-symbol-2665-black-heart-suit', 'misc-symbol-2667-white-club-suit',
    'misc-symbol-2682-die-face-3', 'misc-symbol-2683-die-face-4',
    'misc-symbol-2685-die-face-6', 'misc-symbol-2605-black-star',
    'misc-symbol-2606-white-star', 'misc-symbol-2600-black-sun-with-rays',
    'misc-symbol-260E-black-telephone', 'misc-symbol-262F-yin-yang',
    'misc-symbol-263A-white-smiling-face',
    'misc-symbol-263B-black-smiling-face', 'misc-symbol-2693-anchor',
    'misc-symbol-2699-gear', 'misc-symbol-26A0-warning-sign',
    'misc-symbol-266A-eighth-note', 'misc-symbol-266B-beamed-eighth-notes',
    'misc-symbol-2620-skull-and-crossbones',
]
split = dict(seen=seen_classes, unseen=unseen_classes)

train_dataloader = dict(dataset=dict(data_root=data_root, split=split))
# 229 classes: 3 negative targets per class keep the test short.
val_dataloader = dict(
    dataset=dict(data_root=data_root, split=split, num_negatives=3))
test_dataloader = val_dataloader
