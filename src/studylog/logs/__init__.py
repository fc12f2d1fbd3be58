"""The logs pipeline: front matter, the entry and its schema, `check`, `new`."""
