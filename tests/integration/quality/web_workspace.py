"""The small web app that run_e2e, run_api_tests, run_performance and the web profile's report test
against: a Node HTTP server (page + JSON API), a Playwright spec, a Postman collection and environment,
and a profiles file whose API step starts the app."""

from __future__ import annotations

import json

# ----- a web app for run_e2e, run_api_tests, run_performance and the web profile's report -------------
SERVER_JS = """
const http = require("http");
const port = Number(process.argv[2]);
const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="description" content="A small shop" />
    <title>Shop</title>
  </head>
  <body>
    <main>
      <h1>Shop</h1>
      <button id="add" type="button">Add</button>
      <p>Items: <span id="count">0</span></p>
    </main>
    <script>
      document.getElementById("add").addEventListener("click", () => {
        const count = document.getElementById("count");
        count.textContent = String(Number(count.textContent) + 1);
      });
    </script>
  </body>
</html>`;
http
  .createServer((req, res) => {
    if (req.url === "/api/items") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify([{ id: 1, name: "apple" }]));
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  })
  .listen(port, "127.0.0.1");
"""
E2E_SPEC = """
const { test, expect } = require("@playwright/test");

test("adds an item", async ({ page }) => {
  await page.goto("/");
  await page.click("#add");
  await expect(page.locator("#count")).toHaveText("1");
});

test("has the wrong title", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveTitle("Not the shop", { timeout: 1000 });
});
"""


def webapp(port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    collection = {
        "info": {"name": "shop", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [
            {
                "name": "list items",
                "request": {"method": "GET", "url": "{{base}}/api/items"},
                "event": [
                    {
                        "listen": "test",
                        "script": {
                            "exec": [
                                "pm.test('status is 200', () => pm.response.to.have.status(200));",
                                "pm.test('one item', () => pm.expect(pm.response.json().length).to.eql(1));",
                            ]
                        },
                    }
                ],
            },
            {
                "name": "home page",
                "request": {"method": "GET", "url": "{{base}}/"},
                "event": [
                    {"listen": "test", "script": {"exec": ["pm.test('is json', () => pm.response.to.be.json);"]}}
                ],
            },
        ],
    }
    environment = {"name": "local", "values": [{"key": "base", "value": base, "enabled": True}]}
    return {
        "package.json": json.dumps(
            {
                "name": "webapp",
                "private": True,
                "scripts": {"test": "jest"},
                "devDependencies": {"jest": "30"},
                "jest": {"testPathIgnorePatterns": ["/node_modules/", "/e2e/"]},
            }
        ),
        "server.js": SERVER_JS,
        "src/format.js": "module.exports = { price: (cents) => (cents / 100).toFixed(2) };\n",
        "__tests__/format.test.js": (
            'const { price } = require("../src/format");\n\ntest("price", () => {\n'
            '  expect(price(150)).toBe("1.50");\n});\n'
        ),
        "e2e/shop.spec.js": E2E_SPEC,
        "playwright.config.js": (
            "module.exports = {\n"
            '  testDir: "./e2e",\n'
            "  timeout: 15000,\n"
            f'  use: {{ baseURL: "{base}" }},\n'
            f'  webServer: {{ command: "node server.js {port}", url: "{base}/", reuseExistingServer: false }},\n'
            "};\n"
        ),
        "shop.postman_collection.json": json.dumps(collection, indent=2),
        "local.postman_environment.json": json.dumps(environment, indent=2),
        "profiles.toml": (
            '[profiles.web]\ntools = ["tests", "lint", "e2e", "api"]\njavascript = true\ncoverage = true\n'
            f'[profiles.web.api]\nenvironment = "local.postman_environment.json"\n'
            f'start_command = "node server.js {port}"\nwait_url = "{base}/"\n'
        ),
        "app-port.txt": str(port),
    }
