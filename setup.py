"""Install the `oneshot` package (MMDetection 3.x plugins for one-shot
object detection).

torch and mmcv are deliberately *not* in ``install_requires``: pip would
otherwise replace a user's CUDA torch with a default build, and mmcv 2.1.0
has no wheel for current torch releases, so it must be compiled against the
installed torch with ``--no-build-isolation``. ``tools/install.sh`` does both
in the right order; README.md explains the GPU variant.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'oneshot', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='oneshot',
    version=read_version(),
    description='One-shot object detection toolbox built on MMDetection 3.x',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'data')),
    python_requires='>=3.8',
    install_requires=[
        'mmengine==0.10.7',
        'mmdet==3.3.0',
        'pycocotools',
        'numpy',
        'opencv-python',
        'tqdm',
    ],
    extras_require={'tests': ['pytest']},
    license='Apache-2.0',
    zip_safe=False,
)
