// A jest reporter that rewrites, after every test file, the results so far in the shape of jest's own
// --json report (testResults[].assertionResults[]). jest --bail exits before --json is written, so this
// file is how a run stopped by max_failures still reports what it ran. Path: $PARADISE_JEST_PARTIAL.
"use strict";
const fs = require("fs");

class PartialReporter {
  constructor() {
    this.file = process.env.PARADISE_JEST_PARTIAL;
    this.suites = [];
  }

  onTestResult(test, result) {
    if (!this.file) return;
    const failed = result.numFailingTests > 0 || Boolean(result.testExecError);
    this.suites.push({
      name: result.testFilePath,
      status: failed ? "failed" : "passed",
      message: result.failureMessage || (result.testExecError && result.testExecError.message) || "",
      assertionResults: (result.testResults || []).map((a) => ({
        ancestorTitles: a.ancestorTitles,
        fullName: a.fullName,
        title: a.title,
        status: a.status,
        failureMessages: a.failureMessages,
        location: a.location,
      })),
    });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ testResults: this.suites, partial: true }));
    fs.renameSync(tmp, this.file);
  }
}

module.exports = PartialReporter;
