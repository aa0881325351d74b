"""The MCP server: one short registration per capability (tools_*), the reply envelope (sizing,
kept runs, summaries, facts) and the dashboard's routes.  The top layer: nothing imports it but
``__main__``."""
