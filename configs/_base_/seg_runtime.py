# mmseg's default runtime, plus what every mmext config needs: SegClassCheckHook refuses heads whose
# num_classes differs from the dataset's classes; FiniteCheckHook stops at the first NaN/Inf input or
# loss, before it reaches the weights.
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext.seg'], allow_failed_imports=False)
custom_hooks = [dict(type='SegClassCheckHook'), dict(type='FiniteCheckHook')]
