# mmseg's default runtime, plus what every mmext config needs: SegClassCheckHook refuses heads whose
# num_classes differs from the dataset's classes; FiniteCheckHook stops at the first NaN/Inf input or
# loss, before it reaches the weights; ChannelsLastHook trains bf16 runs in channels-last (the bf16
# OCRNet step 0.83x as long on the CPU measured, fp32 unchanged: docs/benchmarks.md).
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['mmext.seg'], allow_failed_imports=False)
custom_hooks = [dict(type='SegClassCheckHook'), dict(type='FiniteCheckHook'),
                dict(type='ChannelsLastHook', precisions=('bf16', ))]
