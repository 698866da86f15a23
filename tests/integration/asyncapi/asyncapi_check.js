#!/usr/bin/env node
// docs/asyncapi.yaml through maintained tools (tests/node_modules, npm ci --prefix tests):
//
//   asyncapi_check.js lint DOC
//     Parses DOC with the official @asyncapi/parser and prints every diagnostic. Exit 1 on
//     any error or warning (infos are printed only), 2 if DOC cannot be read.
//
//   asyncapi_check.js validate DOC PAYLOADS RESULTS
//     PAYLOADS is a JSON array of {channel, value}: a channel address as written in DOC and
//     a payload as JSON. Each value is validated with Ajv (+ ajv-formats) against the payload
//     schema of the channel's message(s), as the parser dereferenced it. RESULTS gets a JSON
//     array with one array of error strings per payload (empty: valid). Exit 1 if DOC has
//     parse errors or a channel is unknown.
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const severityName = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

function describe(d) {
  return `${severityName[d.severity]} ${d.code} at /${d.path.join('/')}: ${d.message}`;
}

async function parse(docPath) {
  const text = fs.readFileSync(docPath, 'utf8');
  return new Parser().parse(text, { source: docPath });
}

async function lint(docPath) {
  const { diagnostics } = await parse(docPath);
  for (const d of diagnostics) console.log(describe(d));
  const bad = diagnostics.filter(
    (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
  );
  console.log(`${bad.length} errors or warnings, ${diagnostics.length} diagnostics in all`);
  return bad.length === 0 ? 0 : 1;
}

function newAjv() {
  // Strict, so a misspelt keyword in the document is an error rather than silently ignored;
  // but a schema may require a field without describing it (the Home Assistant device).
  const ajv = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addKeyword('x-parser-schema-id'); // the parser's annotation on every schema
  ajv.addFormat('binary', true); // AsyncAPI/OpenAPI: raw bytes (the JPEG previews)
  return ajv;
}

async function validate(docPath, payloadsPath, resultsPath) {
  const { document, diagnostics } = await parse(docPath);
  if (!document) {
    for (const d of diagnostics) console.error(describe(d));
    return 1;
  }
  const ajv = newAjv();
  const validators = new Map(); // channel address -> [validate functions, one per message]
  const validatorsOf = (address) => {
    if (!validators.has(address)) {
      const channel = document.channels().get(address);
      if (!channel) throw new Error(`no channel ${address} in ${docPath}`);
      const messages = channel.messages().all();
      validators.set(
        address,
        messages.map((m) => ({ id: m.id(), check: ajv.compile(m.payload().json()) })),
      );
    }
    return validators.get(address);
  };
  const results = JSON.parse(fs.readFileSync(payloadsPath, 'utf8')).map(({ channel, value }) => {
    const errors = [];
    for (const { id, check } of validatorsOf(channel)) {
      if (check(value)) return []; // valid against one of the channel's messages
      for (const e of check.errors) {
        errors.push(`${id}: ${e.instancePath || '(payload)'} ${e.message} ${JSON.stringify(e.params)}`);
      }
    }
    return errors;
  });
  fs.writeFileSync(resultsPath, JSON.stringify(results));
  return 0;
}

async function main(argv) {
  const [mode, ...args] = argv;
  if (mode === 'lint' && args.length === 1) return lint(args[0]);
  if (mode === 'validate' && args.length === 3) return validate(...args);
  console.error('usage: asyncapi_check.js lint DOC | validate DOC PAYLOADS RESULTS');
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(2);
  },
);
