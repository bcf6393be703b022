"""Peak memory: exact on the CPU allocator's trace, blind to the frees of blocks allocated earlier."""
import torch

from mmext.analysis.memory import peak_memory_bytes, peak_of_allocations


def test_cpu_peak_memory_counts_torch_allocations_exactly():
    def fn():
        kept = torch.empty(1024, 1024)  # 4 MiB, alive until the end
        freed = torch.ones(2048, 1024)  # 8 MiB, freed before the end
        del freed
        return kept

    assert peak_memory_bytes(fn) == 12 * 2**20
    assert peak_memory_bytes(lambda: None) == 0
    # A block allocated in an earlier measurement and freed in this one does not lower its peak
    # (the profiler reports such frees once it has seen the allocation).
    older = {}
    peak_memory_bytes(lambda: older.update(block=torch.empty(1024, 1024)))

    def frees_the_older_block():
        del older['block']
        return torch.empty(512, 1024)  # 2 MiB

    assert peak_memory_bytes(frees_the_older_block) == 2 * 2**20


def test_peak_of_allocations_follows_addresses():
    events = [(0, 1, -100), (1, 2, 50), (2, 3, 30), (3, 2, -50), (4, 2, 40), (5, 9, -7)]
    assert peak_of_allocations(events) == 80  # the free of block 1 (older) and of 9 are ignored
