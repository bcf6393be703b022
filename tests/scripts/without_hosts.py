"""Run a Python script as if some host libraries were not installed.

    python tests/scripts/without_hosts.py HOST[,HOST...] SCRIPT [ARGS...]
    python tests/scripts/without_hosts.py HOST[,HOST...] -c CODE

``sys.modules[host] = None`` makes ``import host`` raise ModuleNotFoundError and
``importlib.util.find_spec(host)`` return None, as for a library that is not installed; mmseg's own
optional imports of mmdet (its MaskFormer heads) then take their fallback too.
"""
import runpy
import sys

hosts, target, *args = sys.argv[1:]
for host in filter(None, hosts.split(',')):
    sys.modules[host] = None
if target == '-c':
    sys.argv = ['-c', *args[1:]]
    exec(compile(args[0], '<without_hosts>', 'exec'), {'__name__': '__main__'})
else:
    sys.argv = [target, *args]
    runpy.run_path(target, run_name='__main__')
