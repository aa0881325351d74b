// The functions, methods and classes of JS/TS sources with their line spans, read with the TypeScript
// compiler's parser (no type checking, nothing executed). Input: a JSON file {key: {name, text}} (argv[3]);
// the typescript module's path is argv[2]. Output on stdout: {key: [{qualname, kind, start, end, body_start}]}.
"use strict";
const fs = require("fs");
const ts = require(process.argv[2]);

function definitions(name, text) {
  const kind = /\.[cm]?tsx$|\.jsx$/.test(name) ? ts.ScriptKind.TSX : undefined;
  const sf = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true, kind);
  const line = (pos) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const found = [];
  const named = (node) => {
    if (ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node) || ts.isClassExpression(node)) {
      return node.name ? [node.name.getText(sf), "class"] : null;
    }
    if (ts.isConstructorDeclaration(node)) return ["constructor", "function"];
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)
    ) {
      return node.name ? [node.name.getText(sf), "function"] : null;
    }
    const init = node.initializer;
    if (
      (ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node) || ts.isPropertyAssignment(node)) &&
      init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init) || ts.isClassExpression(init)) &&
      node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))
    ) {
      return [node.name.text, ts.isClassExpression(init) ? "class" : "function"];
    }
    return null;
  };
  const visit = (node, prefix) => {
    const hit = named(node);
    if (!hit) {
      ts.forEachChild(node, (child) => visit(child, prefix));
      return;
    }
    const qualname = prefix + hit[0];
    const start = line(node.getStart(sf));
    const body = node.body || (node.initializer && node.initializer.body);
    found.push({ qualname, kind: hit[1], start, end: line(node.getEnd()), body_start: body ? line(body.getStart(sf)) : start });
    ts.forEachChild(node, (child) => visit(child, qualname + "."));
  };
  visit(sf, "");
  return found;
}

const files = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const out = {};
for (const [key, file] of Object.entries(files)) {
  out[key] = definitions(file.name, file.text);
}
process.stdout.write(JSON.stringify(out));
