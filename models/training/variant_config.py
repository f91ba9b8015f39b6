"""Write a training config: a base YAML with `key.sub=value` changes applied (a run variant of ablate.sh or
stage6/train_variants.sh). Loader processes from $WORKERS (default 3), 2 torch threads each; changes in $EXTRA apply
to every variant (e.g. "device=cpu batch_size=2" for a smoke run).

Usage: python variant_config.py BASE.yaml "CHANGES" OUT.yaml   (CHANGES "-": none)
"""

import os
import sys

import yaml

base, changes, out = sys.argv[1:4]
with open(base) as stream:
    config = yaml.safe_load(stream)
config["num_workers"], config["torch_threads"] = int(os.environ.get("WORKERS", 3)), 2
for change in changes.split() + os.environ.get("EXTRA", "").split():
    if change == "-":
        continue
    key, value = change.split("=")
    *parents, leaf = key.split(".")
    node = config
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = yaml.safe_load(value)
with open(out, "w") as stream:
    yaml.safe_dump(config, stream, sort_keys=False)
