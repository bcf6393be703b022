from pathlib import Path

from setuptools import find_packages, setup

DEPLOY_REQUIREMENTS = Path(__file__).parent / 'requirements' / 'deploy.txt'

setup(
    name='mmext',
    version='0.1.0',
    description='OpenMMLab plugins: OCR and PointRend heads for mmsegmentation, a DLDE head for '
    'mmdetection, Net2Vec loss and IoU mask encoding',
    packages=find_packages(include=['mmext', 'mmext.*']),
    python_requires='>=3.11',
    install_requires=[
        'torch>=2.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmengine==0.10.7',  # mmext.engine.patch_mmengine patches this release's code
        'mmsegmentation==1.2.2',
        'mmdet==3.3.0',
    ],
    # The pins live in requirements/deploy.txt, which tools/setup_env.sh installs.
    extras_require={
        'deploy': [line.strip() for line in DEPLOY_REQUIREMENTS.read_text().splitlines()
                   if line.strip() and not line.startswith('#')],
    },
    zip_safe=False,
)
