"""Plot the training loss and the validation metrics of one or more runs from the Runner's logs.

    .venv/bin/python tools/analysis/plot_training_curves.py \\
        --runs mmext=work_dirs/benchmarks/ObjectContextHead_seed0 mmseg=work_dirs/benchmarks/OCRHead_seed0 \\
        --out docs/images/curves_ocr.png

Each ``--runs`` entry is ``[LABEL=]PATH``; PATH is a work_dir, one of its timestamped folders, or a
``scalars.json``. mmengine writes ``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object per
line: training lines carry ``iter`` (global) and the losses, validation lines the metrics at ``step``.
In a work_dir the newest timestamped folder with training lines is read (folders of ``tools/test.py``
runs have none), or every one of them with ``--all``, each as its own line.

Left panel: the loss vs iteration, raw (thin, light) and smoothed (an exponential moving average,
``--smooth``). Right panel: the validation metrics vs iteration; a run validated once (the embedded
recipes validate at the last iteration only) gives a single marker, and the panel says so. Legends
give the last values. ``coco/`` metrics are shown ×100, as in mmdet's tables.
"""
import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

# Validation keys shown when --metric is not given, in this order, if a run logged them; per-class
# set IoUs ('IoU.<class>', SetIoUMetric) are added after them.
AUTO_METRICS = ('mIoU', 'mBIoU', 'coco/bbox_mAP', 'coco/segm_mAP')
LINESTYLES = ('-', '--', ':', '-.')
MARKERS = ('o', 's', '^', 'D', 'v', 'P')


@dataclass
class Run:
    """The scalars of one timestamped folder.

    ``train`` holds the training lines (those with ``iter``), ``val`` maps each metric to its
    (iteration, value) pairs.
    """
    label: str
    path: Path
    train: list = field(default_factory=list)
    val: dict = field(default_factory=dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', nargs='+', required=True, metavar='[LABEL=]PATH',
                        help='work_dir, timestamped folder or scalars.json, optionally labelled')
    parser.add_argument('--metric', nargs='+', help='validation keys (default: mIoU, mBIoU, '
                        'coco/bbox_mAP, coco/segm_mAP and IoU.<class>, those that were logged)')
    parser.add_argument('--loss-key', nargs='+', default=['loss'], help='training keys (default: loss)')
    parser.add_argument('--all', action='store_true',
                        help='read every timestamped folder of a work_dir, not only the newest')
    parser.add_argument('--smooth', type=float, default=0.6,
                        help='EMA weight of the smoothed loss in [0, 1), 0: none (default 0.6)')
    parser.add_argument('--loss-scale', choices=('auto', 'log', 'linear'), default='auto',
                        help='auto: log when every plotted loss is positive')
    parser.add_argument('--title', help='figure title (default: the labels)')
    parser.add_argument('--dpi', type=int, default=90)
    parser.add_argument('--out', required=True, help='PNG to write')
    args = parser.parse_args(argv)
    if not 0 <= args.smooth < 1:
        parser.error(f'--smooth must be in [0, 1), got {args.smooth}')
    return args


def read_scalars(path, label):
    """Parse one ``scalars.json`` into a :class:`Run`.

    In an epoch-based run the validation ``step`` is the epoch (``log_metric_by_epoch``); it is
    mapped to the last logged training iteration up to that epoch, so that both panels share the x
    axis.
    """
    run = Run(label, Path(path))
    val_lines = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:  # a run killed while writing leaves a partial last line
            print(f'{path}:{number}: skipped, not JSON ({err})')
            continue
        (run.train if 'iter' in record else val_lines).append(record)
    last_iter_of_epoch = {}
    for record in run.train:
        if 'epoch' in record:
            last_iter_of_epoch[record['epoch']] = record['iter']
    for record in val_lines:
        step = record.get('step', 0)
        if last_iter_of_epoch:
            step = max((it for epoch, it in last_iter_of_epoch.items() if epoch <= step), default=step)
        for key, value in record.items():
            if key not in ('step', 'time', 'data_time') and isinstance(value, (int, float)):
                run.val.setdefault(key, []).append((step, value))
    return run


def find_scalars(path, all_folders=False):
    """The ``scalars.json`` files that PATH names: itself, its timestamped folder's, or a work_dir's
    newest (``all_folders``: every) timestamped folder with training lines, oldest first."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / 'vis_data/scalars.json').is_file():
        return [path / 'vis_data/scalars.json']
    # mmengine names the folders %Y%m%d_%H%M%S, so the names sort by time
    found = sorted(path.glob('*/vis_data/scalars.json'), key=lambda p: p.parent.parent.name)
    with_training = [p for p in found if any('"iter"' in line for line in p.read_text().splitlines())]
    if not with_training:
        raise FileNotFoundError(f'{path}: no <timestamp>/vis_data/scalars.json with training lines '
                                f'({len(found)} without)')
    return with_training if all_folders else with_training[-1:]


def load_runs(specs, all_folders=False):
    """``[LABEL=]PATH`` strings -> list of :class:`Run`; several folders of one work_dir get the
    folder name appended to the label."""
    runs = []
    for spec in specs:
        label, sep, path = spec.partition('=')
        if not sep or not label or Path(spec).exists():  # unlabelled, even if the path holds a '='
            label, path = Path(spec.lstrip('=').rstrip('/')).name, spec.lstrip('=')
        paths = find_scalars(path, all_folders)
        for scalars in paths:
            name = f'{label} ({scalars.parent.parent.name})' if len(paths) > 1 else label
            runs.append(read_scalars(scalars, name))
    return runs


def ema(values, weight):
    """Bias-corrected exponential moving average (TensorBoard's smoothing)."""
    smoothed, mean, norm = [], 0.0, 0.0
    for value in values:
        mean = weight * mean + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        smoothed.append(mean / norm)
    return smoothed


def choose_metrics(runs, requested=None):
    """The validation keys to plot: ``requested`` (each must be in some run) or the automatic ones."""
    logged = {key for run in runs for key in run.val}
    if requested:
        missing = [key for key in requested if key not in logged]
        if missing:
            raise ValueError(f'--metric {missing} not logged; validation keys: {sorted(logged)}')
        return list(requested)
    chosen = [key for key in AUTO_METRICS if key in logged]
    chosen += sorted(key for key in logged if key.startswith('IoU.'))
    return chosen


def _shown(key, value):
    """mmdet logs COCO metrics in [0, 1] (and -1 for an empty area range); show them in percent."""
    return value * 100 if key.startswith('coco/') and value >= 0 else value


def plot(runs, metrics, loss_keys=('loss',), smooth=0.6, loss_scale='auto', title=None):
    """Draw the two panels; returns the Figure and a list of summary lines (last values per run)."""
    fig = Figure(figsize=(11, 4.2))
    ax_loss, ax_val = fig.subplots(1, 2)
    summary = []
    all_positive = True
    for r, run in enumerate(runs):
        style = LINESTYLES[r % len(LINESTYLES)]
        for k, key in enumerate(loss_keys):
            points = [(rec['iter'], rec[key]) for rec in run.train if key in rec]
            if not points:
                summary.append(f'{run.label}: no {key!r} in {run.path}')
                continue
            x, y = zip(*points)
            all_positive &= min(y) > 0
            color = f'C{(r * len(loss_keys) + k) % 10}'  # the run's first color is its metrics' too
            name = run.label if len(loss_keys) == 1 else f'{run.label} {key}'
            ax_loss.plot(x, y, color=color, linestyle=style, linewidth=0.8, alpha=0.3)
            smoothed = ema(y, smooth)
            ax_loss.plot(x, smoothed, color=color, linestyle=style, linewidth=1.8,
                         label=f'{name}: {smoothed[-1]:.3f} at it {x[-1]} (raw {y[-1]:.3f})')
            summary.append(f'{name}: {len(x)} points, first {y[0]:.4f} at it {x[0]}, last {y[-1]:.4f} '
                           f'at it {x[-1]}, smoothed last {smoothed[-1]:.4f}, min {min(y):.4f}')
    if loss_scale == 'log' or (loss_scale == 'auto' and all_positive and ax_loss.lines):
        ax_loss.set_yscale('log')
        for axis in (ax_loss.yaxis.set_major_formatter, ax_loss.yaxis.set_minor_formatter):
            axis(FormatStrFormatter('%g'))  # 0.3, not 3 x 10^-1
    ax_loss.set(xlabel='iteration', ylabel=' + '.join(loss_keys),
                title=f'training loss (light: raw log lines; bold: EMA {smooth})')
    ax_loss.grid(True, which='both', alpha=0.3)
    if ax_loss.lines:
        ax_loss.legend(fontsize=8)

    single_at = []  # the iteration of each plotted metric that was evaluated only once
    for r, run in enumerate(runs):
        for m, key in enumerate(metrics):
            points = [(step, _shown(key, value)) for step, value in run.val.get(key, [])]
            if not points:
                continue
            x, y = zip(*points)
            scale = ' ×100' if key.startswith('coco/') else ''
            name = run.label + (f' {key}' if len(metrics) > 1 else '') + f': {y[-1]:.2f}'
            # overlapping markers of equal results stay visible: each run gets a smaller, hollow marker
            marker = dict(marker=MARKERS[m % len(MARKERS)], markersize=max(10 - 3 * r, 4),
                          color=f'C{(r * len(loss_keys)) % 10}',
                          markerfacecolor='none' if r else None, markeredgewidth=1.5)
            if len(points) == 1:
                single_at.append(x[0])
                ax_val.plot(x, y, linestyle='none', label=f'{name} (once)', **marker)
            else:
                ax_val.plot(x, y, linestyle=LINESTYLES[r % len(LINESTYLES)],
                            label=f'{name} at it {x[-1]}', **marker)
            summary.append(f'{run.label} {key}{scale}: ' + ', '.join(f'{v:.2f} at it {s}' for s, v in points))
    if single_at and len(single_at) == len(ax_val.lines):
        ax_val.set_title('validation: evaluated once, at iteration '
                         + ', '.join(map(str, sorted(set(single_at)))) + ' (markers)')
    else:
        ax_val.set_title('validation' + (' (a lone marker: evaluated once)' if single_at else ''))
    ylabel = ', '.join(key + (' ×100' if key.startswith('coco/') else '') for key in metrics)
    ax_val.set(xlabel='iteration', ylabel=ylabel or 'no validation logged')
    steps = [x for ax in (ax_loss, ax_val) for line in ax.lines for x in line.get_xdata()]
    if steps:  # one x range for both panels: the last evaluation comes after the last loss line
        for ax in (ax_loss, ax_val):
            ax.set_xlim(0, max(steps) * 1.03)
    values = [v for line in ax_val.lines for v in line.get_ydata()]
    if values:  # room around a single value, so that its marker is not on the frame
        low, high = min(values), max(values)
        pad = max((high - low) * 0.15, 0.02 * max(abs(low), abs(high)), 1e-3)
        ax_val.set_ylim(low - pad, high + pad)
        ax_val.legend(fontsize=8, loc='best')
    ax_val.grid(True, alpha=0.3)
    fig.suptitle(title or ' vs '.join(run.label for run in runs))
    fig.tight_layout()
    return fig, summary


def main(argv=None):
    args = parse_args(argv)
    try:
        runs = load_runs(args.runs, args.all)
        metrics = choose_metrics(runs, args.metric)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    fig, summary = plot(runs, metrics, args.loss_key, args.smooth, args.loss_scale, args.title)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    for run in runs:
        print(f'{run.label}: {run.path}')
    print('\n'.join(summary))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
