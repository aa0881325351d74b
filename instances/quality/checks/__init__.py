"""Static checks: lint (ruff, eslint, prettier, tsc) and security scans (bandit, pip-audit, npm audit).
Imports only core."""
