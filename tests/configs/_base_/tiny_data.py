# The embedded dataset shrunk for seconds-long tests: 8 train and 4 val images of 64 px, loaded in the
# main process, in a folder of their own (a folder holds one parameter set). The tests point data_root
# at a temporary folder. Only keys that the hosts' dataset bases lack, so that tiny_shapes.py and
# tiny_shapes_coco.py take this file as a sibling of their host's base.
tiny_data_root = 'data/synthetic_shapes_tiny/'
synthesis = dict(seed=0, num_train=8, num_val=4, size=64)
tiny_loader = dict(num_workers=0, persistent_workers=False,  # what every dataloader gets
                   dataset=dict(data_root=tiny_data_root, synthesis=synthesis))
