"""Tests of a running app: starting it (appserver), Playwright E2E, Newman API tests and Lighthouse
performance.  Imports core and testing."""
