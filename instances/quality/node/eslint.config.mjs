// The default ESLint flat config of the quality instance, used only when a workspace has no eslint config
// of its own (run with `eslint --config <this file>` from the workspace root). It is deliberately the
// recommended rule sets and nothing stylistic: formatting is prettier's job, so findings here are bugs or
// likely bugs. Its imports resolve from this directory's node_modules, not from the workspace.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

// Test files may use jest's, vitest's (with globals: true) or mocha's globals; app code may run in Node
// or in a browser: accept all of them rather than guess wrong and report every `describe` as undefined.
const knownGlobals = { ...globals.node, ...globals.browser, ...globals.jest, ...globals.mocha };

export default defineConfig([
  globalIgnores([
    "**/node_modules/", "**/dist/", "**/build/", "**/coverage/", "**/out/", "**/.next/", "**/vendor/",
    "**/.paradise/", "**/*.min.js", "**/playwright-report/", "**/test-results/",
  ]),
  {
    files: ["**/*.{js,mjs,cjs,jsx}"],
    extends: [js.configs.recommended],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      parserOptions: { ecmaFeatures: { jsx: true } },
      globals: knownGlobals,
    },
  },
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs" } },
  {
    files: ["**/*.{ts,tsx,mts,cts}"],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: { globals: knownGlobals },
  },
]);
