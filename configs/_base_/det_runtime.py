# mmdet's default runtime, plus what every mmext detection config needs: mmdet's NumClassCheckHook
# refuses a head whose num_classes differs from the dataset's classes.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
custom_hooks = [dict(type='NumClassCheckHook')]
