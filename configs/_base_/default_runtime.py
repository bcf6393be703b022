# mmseg's default runtime, plus what every mmext config needs.
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
custom_hooks = [dict(type='SegClassCheckHook')]
