"""usage-assets: CircleCI usage exports as Dagster assets."""

import os

# polars allocates through jemalloc, which by default keeps freed pages for seconds. Loading an
# export part by part then looks like it needs every part at once. Returning pages immediately keeps
# the load's memory bounded by one part (measured in `make bench`). jemalloc reads this when polars
# is first imported, so it has to be set before that, here.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
