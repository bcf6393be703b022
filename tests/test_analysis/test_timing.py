"""Interleaved timing and the summary of its samples."""
import pytest

from mmext.analysis.timing import summarize, time_interleaved


def test_time_interleaved_alternates_and_summarize_gives_quartiles():
    calls = []
    times = time_interleaved({'a': lambda i: calls.append(('a', i)), 'b': lambda i: calls.append(('b', i))},
                             repeats=2, warmup=1)
    assert calls == [('a', -1), ('b', -1), ('a', 0), ('b', 0), ('a', 1), ('b', 1)]
    assert [len(v) for v in times.values()] == [2, 2]
    stats = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (stats['median'], stats['q1'], stats['q3'], stats['iqr']) == (3.0, 2.0, 4.0, 2.0)
    with pytest.raises(ValueError, match='repeats >= 1'):
        time_interleaved({'a': lambda i: None}, repeats=0)
