from setuptools import find_packages, setup

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
    zip_safe=False,
)
