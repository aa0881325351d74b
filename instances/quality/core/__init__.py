"""The quality instance's base layer: errors, running a tool (runner, toolrun, progress), the workspace,
profiles, CPUs, the dashboard's job registry, the instance's data directory and the bundled Node
toolchain (js_packages).  It imports no other layer."""
