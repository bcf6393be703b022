"""Train-step time of the embedded models in fp32 and mixed precision, in the default or the channels-last
memory format, interleaved in one process.

    .venv/bin/python tools/benchmarks/amp_train_step.py [--configs CONFIG ...] [--repeats 10] [--profile]
        [--variants fp32 fp32+cl mixed mixed+cl] [--out-dir work_dirs/benchmarks/amp]

For each config, one copy of its model per variant (the same weights) takes one ``train_step`` on the
same batch of the config's training data, in turns: fp32 through ``OptimWrapper``, mixed through
``MixedPrecisionOptimWrapper`` (bf16 autocast on a CPU with bf16 units, fp16 on a GPU), both built from
the config's ``optim_wrapper``; ``+cl`` puts the model and its input batches in channels-last, as
``ChannelsLastHook`` does. On a CPU without bf16 units the mixed variants are left out. It prints the
median seconds and the ratios to the first variant and writes ``amp_train_step.json`` and ``.md``.

``--profile`` then runs one more step of each under ``torch.profiler`` and sums the self CPU time of
the ops by kind (convolutions, matrix products, normalisation, dtype casts, the optimizer, the rest):
where the mixed step's time goes and which kinds bf16 does not speed up.

Pretrained initialisations (``init_cfg=dict(type='Pretrained')``, e.g. the Net2Vec probe's frozen
backbone) are dropped: weights do not change the time of a step.
"""
import argparse
import copy
import os.path as osp
import statistics

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

import mmext  # noqa: F401  (registers the models and MixedPrecisionOptimWrapper)
from mmext.analysis import (build_model, load_batches, markdown_table, quiet_logs, ratio, time_interleaved,
                            write_report)
from mmext.engine.channels_last_hook import to_channels_last
from mmext.engine.optim import cpu_bf16_flags, optim_wrapper_in

CONFIGS = ('configs/ocr_r50.py', 'configs/pointrend_r50.py', 'configs/dlde_retinanet_r50.py',
           'configs/net2vec_r50.py')


def without_pretrained(cfg):
    """``cfg`` with every ``init_cfg`` of type Pretrained removed (nothing is loaded)."""
    if isinstance(cfg, dict):
        return {key: without_pretrained(value) for key, value in cfg.items()
                if not (key == 'init_cfg' and isinstance(value, dict) and value.get('type') == 'Pretrained')}
    if isinstance(cfg, list):
        return [without_pretrained(value) for value in cfg]
    return cfg


VARIANTS = ('fp32', 'fp32+cl', 'mixed', 'mixed+cl')  # +cl: channels-last, as ChannelsLastHook sets it


def time_config(path, variants, repeats, device, profile=False):
    """One train step of each variant's copy of the config's model, interleaved; ratios against the
    first variant."""
    cfg = Config.fromfile(path)
    cfg.model = without_pretrained(cfg.model.to_dict())
    batch = load_batches(cfg, 'train', max_batches=1)[0]
    models, wrappers = {}, {}
    for name in variants:
        precision, channels_last = name.split('+')[0], name.endswith('+cl')
        models[name] = build_model(cfg, device=device, seed=0).train()
        # The recipe's own wrapper, made plain fp32, and then mixed as --amp makes it.
        wrapper_cfg = optim_wrapper_in(copy.deepcopy(cfg.optim_wrapper.to_dict()), 'fp32')
        if precision == 'mixed':
            wrapper_cfg = optim_wrapper_in(wrapper_cfg, 'mixed')
        wrappers[name] = build_optim_wrapper(models[name], wrapper_cfg)
        if channels_last:
            models[name].to(memory_format=torch.channels_last)
            models[name].data_preprocessor.register_forward_hook(to_channels_last)
    steps = {name: (lambda _, name=name: models[name].train_step(copy.copy(batch), wrappers[name]))
             for name in models}
    times = time_interleaved(steps, repeats=repeats, warmup=2, device=device)
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    result = dict(config=path, batch_size=len(batch['inputs']), input_shape=list(batch['inputs'][0].shape),
                  samples=times, median_seconds=medians,
                  ratio_to_first={name: ratio(medians[name], medians[variants[0]]) for name in variants})
    if profile:
        result['profile_ms'] = {name: profile_by_kind(lambda: steps[name](0))
                                for name in (variants[0], variants[-1])}
    return result

# Op-name fragments of each kind, first match wins (aten names as the CPU profiler reports them).
OP_KINDS = (('convolution', ('conv', 'mkldnn_convolution')),
            ('matrix product', ('mm', 'matmul', 'linear', 'addmm', 'bmm', 'baddbmm', 'einsum')),
            ('normalisation', ('batch_norm', 'group_norm', 'layer_norm', 'native_norm', 'norm')),
            ('dtype cast', ('_to_copy', 'to_dtype', 'copy_')),
            ('optimizer', ('_foreach', 'adam', 'lerp', 'addcdiv', 'sqrt', 'clip')),
            ('softmax / pooling / sampling', ('softmax', 'pool', 'grid_sampler', 'upsample', 'interpolate')))


def op_kind(name: str) -> str:
    lowered = name.lower()
    for kind, fragments in OP_KINDS:
        if any(fragment in lowered for fragment in fragments):
            return kind
    return 'other (element-wise, indexing, losses, data)'


def profile_by_kind(fn) -> dict:
    """Milliseconds of self CPU time of one call of ``fn``, summed by :func:`op_kind`."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    totals = {}
    for event in prof.key_averages():
        kind = op_kind(event.key)
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total / 1000
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def markdown(results, env):
    variants = list(results[0]['median_seconds'])
    first = variants[0]
    lines = [f'Train step, median of {len(results[0]["samples"][first])} interleaved steps; {env}', '']
    lines += markdown_table(
        ['config', 'batch'] + [f'{v} (s)' for v in variants] + [f'{v} / {first}' for v in variants[1:]],
        [[osp.basename(r['config']), r['batch_size']] + [f'{r["median_seconds"][v]:.3f}' for v in variants]
         + [f'{r["ratio_to_first"][v]:.3f}' for v in variants[1:]] for r in results])
    for result in results:
        if 'profile_ms' not in result:
            continue
        fp32, mixed = result['profile_ms'][first], result['profile_ms'][variants[-1]]
        total32, total16 = sum(fp32.values()), sum(mixed.values())
        kinds = sorted(set(fp32) | set(mixed), key=lambda k: -mixed.get(k, 0))
        rows = [[kind, f'{fp32.get(kind, 0.0):.0f}', f'{mixed.get(kind, 0.0):.0f}',
                 f'{ratio(mixed.get(kind, 0.0), fp32.get(kind, 0.0)):.2f}',
                 f'{100 * mixed.get(kind, 0.0) / total16:.1f}%'] for kind in kinds]
        rows.append(['total', f'{total32:.0f}', f'{total16:.0f}', f'{ratio(total16, total32):.2f}', '100%'])
        lines += ['', f'{osp.basename(result["config"])}, one profiled step, self CPU time by kind of op:',
                  '']
        last = variants[-1]
        lines += markdown_table(['kind', f'{first} (ms)', f'{last} (ms)', f'{last} / {first}',
                                 f'share of {last}'], rows)
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS))
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=['fp32', 'mixed'],
                        help='fp32 or mixed precision, +cl in channels-last; ratios against the first')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--profile', action='store_true', help='also profile one step of each, by kind of op')
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/amp')
    args = parser.parse_args()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    variants = args.variants
    if device == 'cpu' and not cpu_bf16_flags():
        variants = [v for v in variants if not v.startswith('mixed')]
        print('this CPU has no bf16 units: mixed precision is refused on it, its variants are not timed')
        if len(variants) < 2:
            raise SystemExit('nothing to compare: give two fp32 variants, e.g. --variants fp32 fp32+cl')
    quiet_logs()
    summary = f'{device}, {torch.get_num_threads()} threads, bf16 flags {cpu_bf16_flags() or "none"}'
    results = []
    for path in args.configs:
        results.append(time_config(path, variants, args.repeats, device, args.profile))
        print(markdown(results[-1:], summary).splitlines()[-1], flush=True)
    write_report(args.out_dir, 'amp_train_step', dict(device=device, results=results),
                 markdown(results, summary))
    print(markdown(results, summary))


if __name__ == '__main__':
    main()
