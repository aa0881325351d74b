// Dashboard actions: restart an instance or a client, rotate a client's token (shown once), delete a client
// (after a confirmation). Each is one call to the admin API at this page's own origin, with the admin token
// from sessionStorage in an Authorization header: never a cookie, so no other site can make the browser send
// it (and the bridge refuses admin writes from foreign origins, guard.py). The bridge records each as an
// event, which the feed then shows. Exposed as window.ParadiseActions for app.js.
"use strict";

(() => {
  const TOKEN_KEY = "devops-paradise.admin-token";
  const $ = (id) => document.getElementById(id);
  let pendingDelete = null;

  function button(action, label, client, service) {
    const node = document.createElement("button");
    node.type = "button";
    node.className = `action action-${action}`;
    node.dataset.action = action;
    node.dataset.client = client;
    if (service) node.dataset.service = service;
    node.textContent = label;
    return node;
  }

  function say(kind, text) {
    const status = $("action-status");
    status.className = `action-status action-${kind}`;
    status.textContent = text;
  }

  async function call(method, path) {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}` },
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
      throw new Error(`${response.status}: ${message}`);
    }
    return body;
  }

  const enc = encodeURIComponent;

  async function run(node) {
    const { action, client, service } = node.dataset;
    const name = service ? `${client}/${service}` : client;
    if (action === "delete") return askDelete(client);
    node.disabled = true;
    say("busy", `${action} ${name}…`);
    try {
      if (action === "restart" && service) {
        await call("POST", `/clients/${enc(client)}/instances/${enc(service)}/restart`);
        say("ok", `restart of ${name} requested`);
      } else if (action === "restart") {
        await call("POST", `/clients/${enc(client)}/restart`);
        say("ok", `restart of every instance of ${name} requested`);
      } else if (action === "rotate") {
        const rotated = await call("POST", `/clients/${enc(client)}/token`);
        showToken(client, rotated.token);
        say("ok", `token of ${name} rotated; the old one no longer works`);
      }
    } catch (error) {
      say("error", `${action} ${name} failed: ${error.message}`);
    } finally {
      node.disabled = false;
    }
  }

  // The new token is shown once, in a dialog; closing it forgets it (it is in no variable after that).
  function showToken(client, token) {
    $("token-client").textContent = client;
    $("new-token").textContent = token;
    $("token-dialog").showModal();
  }

  function askDelete(client) {
    pendingDelete = client;
    $("delete-client").textContent = client;
    $("delete-dialog").showModal();
  }

  async function confirmDelete() {
    const client = pendingDelete;
    pendingDelete = null;
    $("delete-dialog").close();
    if (!client) return;
    say("busy", `deleting ${client}…`);
    try {
      await call("DELETE", `/clients/${enc(client)}`);
      say("ok", `${client} deleted; its instances stopped and its ports released`);
    } catch (error) {
      say("error", `delete ${client} failed: ${error.message}`);
    }
  }

  function attach(container) {
    container.addEventListener("click", (click) => {
      const node = click.target.closest("button[data-action]");
      if (node && container.contains(node)) run(node);
    });
    $("token-close").addEventListener("click", () => $("token-dialog").close());
    $("token-dialog").addEventListener("close", () => { $("new-token").textContent = ""; });
    $("delete-cancel").addEventListener("click", () => { pendingDelete = null; $("delete-dialog").close(); });
    $("delete-confirm").addEventListener("click", confirmDelete);
  }

  window.ParadiseActions = { attach, button };
})();
