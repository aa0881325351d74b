"""Running tests: pytest's plan, shards and ordering, its config and output, merging and history,
per-test coverage contexts, and the jest/vitest runners (js_*).  Imports only core."""
