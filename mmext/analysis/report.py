"""The one report writer of the benchmark scripts: every result as JSON (with the machine it ran on),
its tables as markdown, and an optional chart, under one stem."""
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from .timing import environment


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    """The lines of a markdown table; cells are written with ``str``."""
    return ['| ' + ' | '.join(map(str, header)) + ' |', '|' + '---|' * len(header)] + \
        ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]


def write_report(out_dir, stem: str, result: Dict[str, Any], markdown: Optional[str] = None,
                 chart: Optional[Callable[[str], None]] = None) -> Dict[str, Path]:
    """Write ``<stem>.json`` (``result``, with ``environment`` added unless it has one), ``<stem>.md``
    (``markdown``, if given) and ``<stem>.png`` (``chart(path)``, if given) under ``out_dir``, created
    if missing; return the paths written, keyed by extension."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {'json': out_dir / f'{stem}.json'}
    result = result if 'environment' in result else dict(result, environment=environment())
    paths['json'].write_text(json.dumps(result, indent=1, default=str))
    if markdown is not None:
        paths['md'] = out_dir / f'{stem}.md'
        paths['md'].write_text(markdown)
    if chart is not None:
        paths['png'] = out_dir / f'{stem}.png'
        chart(str(paths['png']))
    return paths
