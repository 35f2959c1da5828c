"""usage-assets: CircleCI usage exports as Dagster assets."""

import os

# polars allocates through jemalloc, which by default keeps freed pages for ten seconds. Loading an
# export part by part then looks like it needs every part at once. Keeping them for one second
# lets the next part reuse them (returning them at once costs page faults on every part) while
# the load's memory stays bounded by about one part (`make bench` measures both). jemalloc reads this
# when polars is first imported, so it has to be set before that, here.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:0")
