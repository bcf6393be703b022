# mmdet's default runtime, plus what every mmext detection config needs: DetClassCheckHook refuses a
# head whose num_classes differs from the dataset's classes, and labels that do not fit it (before
# training, validation and testing, as SegClassCheckHook does for segmentors); FiniteCheckHook stops
# at the first NaN/Inf input, box or loss, before it reaches the weights.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext.det'], allow_failed_imports=False)
custom_hooks = [dict(type='DetClassCheckHook'), dict(type='FiniteCheckHook')]
