"""The JavaScript/TypeScript half of the quality instance: jest/vitest runs, eslint/prettier, the
ES module/CommonJS import graph, and the Playwright, Newman and Lighthouse tools."""
