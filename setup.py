from pathlib import Path

from setuptools import find_packages, setup

REQUIREMENTS = Path(__file__).parent / 'requirements'


def requirements(name):
    """The pins of requirements/<name>.txt, which tools/setup_env.sh installs."""
    lines = (REQUIREMENTS / f'{name}.txt').read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


EXTRAS = {name: requirements(name) for name in ('seg', 'det', 'deploy')}

setup(
    name='mmext',
    version='0.1.0',
    description='OpenMMLab plugins: OCR and PointRend heads for mmsegmentation, a DLDE head for '
    'mmdetection, Net2Vec loss and IoU mask encoding',
    packages=find_packages(include=['mmext', 'mmext.*']),
    python_requires='>=3.11',
    # Core: mmext.ops, mmext.datasets and mmext.engine. mmext.seg needs the 'seg' extra, mmext.det the
    # 'det' extra, mmext.deploy the 'deploy' extra; 'all' is what tools/setup_env.sh installs.
    install_requires=['torch>=2.0', 'mmcv>=2.0.0rc4,<2.2.0', *requirements('runtime')],
    extras_require={**EXTRAS, 'all': sorted({pin for pins in EXTRAS.values() for pin in pins})},
    zip_safe=False,
)
