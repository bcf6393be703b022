# mmdet's default runtime, plus what every mmext detection config needs: DetClassCheckHook refuses a
# head whose num_classes differs from the dataset's classes, and labels that do not fit it (before
# training, validation and testing, as SegClassCheckHook does for segmentors); FiniteCheckHook stops
# at the first NaN/Inf input, box or loss, before it reaches the weights; ChannelsLastHook trains bf16
# runs in channels-last (the bf16 DLDE step 0.91x as long on the CPU measured: docs/benchmarks.md).
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext.det'], allow_failed_imports=False)
custom_hooks = [dict(type='DetClassCheckHook'), dict(type='FiniteCheckHook'),
                dict(type='ChannelsLastHook', precisions=('bf16', ))]
