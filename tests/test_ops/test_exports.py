"""mmext.ops exports every public function (and class) of its modules."""
import importlib
import inspect
import pkgutil

import mmext.ops


def test_every_public_function_of_every_module_is_exported():
    modules = [info.name for info in pkgutil.iter_modules(mmext.ops.__path__)]
    assert {'boundary_iou', 'checks', 'directional', 'iou_encoding', 'net2vec', 'object_context',
            'point_rend'} <= set(modules)
    public = {}
    for name in modules:
        module = importlib.import_module(f'mmext.ops.{name}')
        public.update({attr: obj for attr, obj in vars(module).items()
                       if not attr.startswith('_') and (inspect.isfunction(obj) or inspect.isclass(obj))
                       and obj.__module__ == module.__name__})
    assert sorted(mmext.ops.__all__) == sorted(public)
    assert all(getattr(mmext.ops, attr) is obj for attr, obj in public.items())
