#!/usr/bin/env node
// Deploys photorig's Node-RED flows into a running Node-RED through its admin API, with the
// broker node pointed at your broker and its password taken from a file, so no password is
// ever written into a flow file or typed on a command line.
//
//   node dashboards/node-red/deploy-flows.js --url http://127.0.0.1:1880 \
//       --broker-host 127.0.0.1 --broker-port 1883 --username photorig-dashboard \
//       --password-file .run/broker/secrets/photorig-dashboard.password \
//       [--env TRAVEL_MS=800] [--token-file FILE] turntable.json [dashboard.json]
//
// Flows already in Node-RED are kept: nodes with the same ids as ours (and everything on
// our tabs) are replaced, the rest is left alone. --env NAME=VALUE sets a flow property
// (e.g. TRAVEL_MS, DEGREES_PER_S, RIG_ID) on every tab of ours that declares it.
// --token-file holds a bearer token for a Node-RED with adminAuth.
'use strict';

const fs = require('fs');

const BROKER_ID = 'photorig_broker';

function usage(message) {
    if (message) console.error(`deploy-flows: ${message}`);
    const text = fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 15);
    console.error(text.map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
    process.exit(2);
}

function parseArgs(argv) {
    const opts = { env: {}, files: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--url') opts.url = value().replace(/\/+$/, '');
        else if (a === '--broker-host') opts.brokerHost = value();
        else if (a === '--broker-port') opts.brokerPort = value();
        else if (a === '--username') opts.username = value();
        else if (a === '--password-file') opts.passwordFile = value();
        else if (a === '--token-file') opts.tokenFile = value();
        else if (a === '--env') {
            const kv = value();
            const eq = kv.indexOf('=');
            if (eq < 1) usage(`--env wants NAME=VALUE, got '${kv}'`);
            opts.env[kv.slice(0, eq)] = kv.slice(eq + 1);
        } else if (a === '-h' || a === '--help') usage();
        else if (a.startsWith('-')) usage(`unknown option ${a}`);
        else opts.files.push(a);
    }
    if (!opts.url) usage('--url is required');
    if (opts.files.length === 0) usage('name at least one flow file');
    if (opts.brokerPort !== undefined && !/^[0-9]+$/.test(opts.brokerPort)) usage('--broker-port must be a number');
    return opts;
}

// One secret per file; a trailing newline (as `echo` writes it) is not part of it.
function readSecret(path) {
    return fs.readFileSync(path, 'utf8').split('\n')[0].replace(/\r$/, '');
}

function loadFlows(files) {
    const byId = new Map();
    for (const file of files) {
        const nodes = JSON.parse(fs.readFileSync(file, 'utf8'));
        if (!Array.isArray(nodes)) throw new Error(`${file}: not a Node-RED flow export (expected an array)`);
        for (const n of nodes) byId.set(n.id, n);  // shared config nodes (the broker) appear once
    }
    return [...byId.values()];
}

function configure(nodes, opts) {
    const broker = nodes.find((n) => n.id === BROKER_ID);
    if (broker) {
        if (opts.brokerHost) broker.broker = opts.brokerHost;
        if (opts.brokerPort) broker.port = opts.brokerPort;
        if (opts.username || opts.passwordFile) {
            // Node-RED moves `credentials` out of the flow into its encrypted credentials file.
            broker.credentials = {};
            if (opts.username) broker.credentials.user = opts.username;
            if (opts.passwordFile) broker.credentials.password = readSecret(opts.passwordFile);
        }
    }
    const unused = new Set(Object.keys(opts.env));
    for (const tab of nodes.filter((n) => n.type === 'tab')) {
        for (const e of tab.env || []) {
            if (Object.prototype.hasOwnProperty.call(opts.env, e.name)) {
                e.value = opts.env[e.name];
                unused.delete(e.name);
            }
        }
    }
    if (unused.size) throw new Error(`no flow declares ${[...unused].join(', ')}`);
    return nodes;
}

async function api(opts, method, path, body) {
    const headers = { 'Node-RED-API-Version': 'v2', 'Content-Type': 'application/json' };
    if (opts.tokenFile) headers.Authorization = `Bearer ${readSecret(opts.tokenFile)}`;
    if (method === 'POST') headers['Node-RED-Deployment-Type'] = 'full';
    const res = await fetch(opts.url + path, { method, headers, body: body && JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : {};
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const ours = configure(loadFlows(opts.files), opts);
    const ourIds = new Set(ours.map((n) => n.id));
    const current = await api(opts, 'GET', '/flows');
    const kept = (current.flows || []).filter((n) => !ourIds.has(n.id) && !ourIds.has(n.z));
    const result = await api(opts, 'POST', '/flows', { rev: current.rev, flows: kept.concat(ours) });
    const tabs = ours.filter((n) => n.type === 'tab').map((n) => n.label);
    console.log(`deploy-flows: deployed ${tabs.join(', ')} (${ours.length} nodes, ${kept.length} kept) rev ${result.rev}`);
}

main().catch((err) => {
    console.error(`deploy-flows: ${err.message}`);
    process.exit(1);
});
