// herald's AsyncAPI document, judged by @asyncapi/parser and by ajv.
//
// Usage: node asyncapi.mjs ASYNCAPI.yaml ASYNCAPI.json CASES.json
//
// Both serializations must parse with zero errors. The parser only warns on
// draft 2020-12 payloads and does not validate them, so every message payload
// (as the parser resolved it) is also compiled by ajv (2020-12, formats
// asserted) and must agree with herald's own verdict on each shipped example
// (CASES: [{message, example, event, herald_valid}], computed by the Rust test).
// Prints one JSON summary line; exits 1 on any error or disagreement.

import fs from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [yamlPath, jsonPath, casesPath] = process.argv.slice(2);
if (!casesPath) {
  console.error('usage: node asyncapi.mjs ASYNCAPI.yaml ASYNCAPI.json CASES.json');
  process.exit(2);
}

const problems = [];
const parser = new Parser();

async function parse(path) {
  const { document, diagnostics } = await parser.parse(fs.readFileSync(path, 'utf8'));
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of errors) problems.push(`${path}: ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
  if (!document) problems.push(`${path}: the parser returned no document`);
  return { document, diagnostics };
}

// The parser marks the schemas it visited; those marks are not JSON Schema.
function strip(value) {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (!k.startsWith('x-parser-')) out[k] = strip(v);
    return out;
  }
  return value;
}

const fromYaml = await parse(yamlPath);
const fromJson = await parse(jsonPath);
const doc = fromYaml.document;
const summary = { errors: 0, warnings: 0, channels: 0, messages: 0, operations: 0, cases: 0 };
if (doc) {
  summary.warnings = fromYaml.diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).length;
  summary.channels = doc.channels().length;
  summary.messages = doc.messages().length;
  summary.operations = doc.operations().length;
  if (fromJson.document && fromJson.document.messages().length !== summary.messages) {
    problems.push('the YAML and JSON documents hold different numbers of messages');
  }
  const validators = new Map();
  for (const m of doc.messages().all()) {
    const payload = m.payload();
    if (!payload) { problems.push(`message ${m.id()} has no payload`); continue; }
    const format = payload.json().schemaFormat ?? m.schemaFormat();
    if (format !== 'application/schema+json;version=draft-2020-12') {
      problems.push(`message ${m.id()}: schemaFormat ${format}`);
    }
    const json = payload.json();
    const schema = strip(json.schemaFormat ? json.schema : json);
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    try {
      validators.set(m.id(), ajv.compile(schema));
    } catch (e) {
      problems.push(`message ${m.id()}: ajv cannot compile its payload: ${e.message}`);
    }
  }
  const cases = JSON.parse(fs.readFileSync(casesPath, 'utf8'));
  for (const c of cases) {
    const validate = validators.get(c.message);
    if (!validate) { problems.push(`no message ${c.message} in the document`); continue; }
    summary.cases += 1;
    const ok = validate(c.event);
    if (ok !== c.herald_valid) {
      problems.push(`${c.example} on ${c.message}: herald says ${c.herald_valid ? 'valid' : 'invalid'}, ajv says ${ok ? 'valid' : 'invalid: ' + ajv_errors(validate)}`);
    }
  }
}

function ajv_errors(validate) {
  return (validate.errors || []).map((e) => `${e.instancePath} ${e.message}`).join('; ');
}

summary.errors = problems.length;
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify(summary));
