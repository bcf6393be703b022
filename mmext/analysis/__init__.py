"""Measuring models: interleaved timing, peak memory, FLOP and parameter counts, and models and
batches built from a config without a Runner. Used by ``tools/get_flops.py`` and ``tools/benchmarks/``;
not imported by ``import mmext``."""
from .data import iter_batches, load_batches, plain_dataloader_cfg
from .flops import count_flops, count_params, flops_per_component, model_components
from .memory import peak_memory_bytes, peak_of_allocations
from .report import markdown_table, write_report
from .models import build_model, copy_weights, meta_shapes, predict, preprocess, quiet_logs, total_loss
from .timing import (dense_peak_gflops, environment, ratio, summarize, synchronize, throughput,
                     time_interleaved, timed_call)

__all__ = [
    'iter_batches', 'load_batches', 'plain_dataloader_cfg', 'count_flops', 'count_params',
    'flops_per_component', 'model_components', 'peak_memory_bytes', 'peak_of_allocations', 'build_model',
    'copy_weights', 'meta_shapes', 'predict', 'preprocess', 'quiet_logs', 'total_loss', 'dense_peak_gflops',
    'environment', 'ratio', 'summarize', 'synchronize', 'throughput', 'time_interleaved', 'timed_call',
    'markdown_table', 'write_report'
]
