# mmdet's default runtime, plus what every mmext detection config needs.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
