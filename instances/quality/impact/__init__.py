"""Change impact: the git diff, the Python and JS/TS import graphs, selection of the tests a change
reaches, Serena-aware narrowing and risk.  Imports core and testing."""
