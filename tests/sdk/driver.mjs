// Drive the official JavaScript SDK's Channel client (@aeternity/aepp-sdk 14) through an action script.
//
// Usage: node driver.mjs --sdk DIR --url ws://127.0.0.1:PORT/channel --script SCRIPT.json [--timeout S]
//                        [--linger S] [--verbose]
//
//   DIR      a directory whose node_modules holds @aeternity/aepp-sdk (the tests install 14.1.1 there)
//   SCRIPT   an action script (format 1) written by chanlog.replay.actions.action_script(..., "sdk14")
//
// Both participants run in this one process, each as a real SDK `Channel` connected to the URL with the
// recorded channel parameters. The SDK answers sign requests by itself and calls our `sign` callback;
// this app does what the recording's app did, step by step in transcript order: proposes updates
// (`channel.update`), sends messages, makes `channels.get.*` calls, declines the sign requests the
// recording declined, shuts down, disconnects. Each step first waits until the node frames recorded
// before it have arrived. Transactions are signed with a fresh random key (the fake node compares the
// transaction inside `signed_tx`, not the signatures).
//
// --linger S keeps the connections open S seconds after the end (to see the SDK's pings answered).
// Prints one JSON summary line on stdout: {ok, steps_done, steps, waiting_for, connections: [{conn, role,
// received, expected, sent, status, pings, pongs}], errors: [...]}.
// Exit status: 0 when every step was done and every connection received all its recorded node frames;
// 1 otherwise (timeout, SDK error on a step); 2 bad usage.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    sdk: { type: 'string' },
    url: { type: 'string' },
    script: { type: 'string' },
    timeout: { type: 'string', default: '60' },
    linger: { type: 'string', default: '0' },
    verbose: { type: 'boolean', default: false },
  },
});
if (!args.sdk || !args.url || !args.script) {
  process.stderr.write('usage: node driver.mjs --sdk DIR --url WS_URL --script SCRIPT.json [--timeout S]\n');
  process.exit(2);
}

const sdkRoot = path.join(args.sdk, 'node_modules', '@aeternity', 'aepp-sdk', 'es');
const load = (rel) => import(pathToFileURL(path.join(sdkRoot, rel)).href);
const { Channel, MemoryAccount } = await load('index.js');
// The SDK's own RPC helpers (same module instance as the Channel uses), for requests its API lacks.
const { call, notify } = await load('channel/internal.js');
const JsonBig = (await load('utils/json-big.js')).default;

// Big integers stay exact: JsonBig keeps them as strings and the SDK writes numeric strings as numbers.
const script = JsonBig.parse(readFileSync(args.script, 'utf8'));
const NETWORK_ID = 'ae_chanlog_replay';
const log = (...parts) => { if (args.verbose) process.stderr.write(`[driver] ${parts.join(' ')}\n`); };

const errors = [];
const conns = new Map(); // conn number -> state
const waiters = new Set();
let current = 'starting';

function wake() {
  for (const w of [...waiters]) {
    if (w.pred()) { waiters.delete(w); w.resolve(); }
  }
}

function waitFor(pred, what) {
  current = what;
  if (pred()) return Promise.resolve();
  return new Promise((resolve) => waiters.add({ pred, resolve }));
}

function afterMet(after) {
  return Object.entries(after).every(([conn, n]) => (conns.get(Number(conn))?.received ?? 0) >= n);
}

// Count what each Channel receives through the SDK's own debug hook: it runs for every frame the SDK
// parses, from the first one on (a node may send frames in the same TCP read as the handshake, before
// `Channel.initialize` returns). A Channel is bound to the connection being opened at its first call.
let opening = null;
const byChannel = new WeakMap();
const sdkDebug = Channel.prototype._debug;
Channel.prototype._debug = function debug(...parts) {
  let state = byChannel.get(this);
  if (state === undefined && opening !== null) {
    state = opening;
    byChannel.set(this, state);
  }
  if (state !== undefined && parts[0] === 'received message' && parts[1] === 'channels.system.pong') {
    state.pongs += 1;
    log(state.role, '<-- pong', `#${state.pongs}`);
  } else if (state !== undefined && parts[0] === 'received message') {
    state.received += 1;
    log(state.role, '<--', parts[1] ?? 'response', `#${state.received}`);
    setImmediate(wake);
  }
  return sdkDebug.apply(this, parts);
};

function connState(conn) {
  const entry = script.connections.find((c) => Number(c.conn) === conn);
  const state = {
    conn, role: entry.role, entry, channel: null, received: 0, sent: 0, closed: false, pings: 0, pongs: 0,
    signTurn: null, signTurnWaiters: [], account: MemoryAccount.generate(), outgoing: [],
  };
  conns.set(conn, state);
  return state;
}

// The sign callback of every flow: wait for the script's sign step of this connection, then sign with a
// random key or decline with the recorded error code.
async function signFor(state, tag, tx) {
  const step = await new Promise((resolve) => {
    if (state.signTurn) resolve(state.signTurn); else state.signTurnWaiters.push(resolve);
  });
  state.signTurn = null;
  const expected = String(step.method).replace(/^channels\./, '');
  if (tag !== expected) {
    errors.push({ step: step.step, conn: state.conn, error: `SDK asked to sign ${tag}, script expects ${expected}` });
  }
  if (step.decline !== null && step.decline !== undefined) {
    log(state.role, 'declines', tag, 'with', step.decline);
    return Number(step.decline);
  }
  log(state.role, 'signs', tag);
  return state.account.signTransaction(tx, { networkId: NETWORK_ID });
}

function camel(key) {
  return key.replace(/_./g, (m) => m[1].toUpperCase());
}

async function openConn(step) {
  const state = connState(Number(step.conn));
  const options = { url: args.url, sign: (tag, tx) => signFor(state, tag, tx) };
  for (const [k, v] of Object.entries(state.entry.params)) {
    if (k !== 'protocol') options[camel(k)] = v;
  }
  log(state.role, 'opens connection', state.conn);
  opening = state;
  const channel = await Channel.initialize(options);
  opening = null;
  state.channel = channel;
  const ws = channel._websocket;
  const send = ws.send.bind(ws);
  ws.send = (data) => {
    const msg = JsonBig.parse(data);
    const ping = msg.method === 'channels.system' && msg.id === undefined && msg.params?.action === 'ping';
    if (ping) state.pings += 1; else { state.sent += 1; state.outgoing.push(msg.method); }
    log(state.role, '-->', msg.method, msg.id === undefined ? '' : `id=${msg.id}`);
    send(data);
    setImmediate(wake);
  };
  channel.on('error', (error) => errors.push({ conn: state.conn, error: String(error?.message ?? error) }));
  channel.on('statusChanged', (status) => {
    if (status === 'disconnected') state.closed = true;
    wake();
  });
}

const settle = (what, promise) => promise.then(
  (result) => log(what, 'resolved', JsonBig.stringify(result ?? null).slice(0, 120)),
  (error) => log(what, 'rejected:', error?.message ?? error),
);

function doSend(state, step) {
  const ch = state.channel;
  const p = step.params ?? {};
  const signer = (tag) => (tx) => signFor(state, tag, tx);
  const what = `${state.role} ${step.method}`;
  switch (step.method) {
    case 'channels.update.new':
      return settle(what, ch.update(p.from, p.to, p.amount, signer('update'), p.meta));
    case 'channels.message':
      return settle(what, ch.sendMessage(p.info, p.to));
    case 'channels.shutdown':
      return settle(what, ch.shutdown(signer('shutdown_sign')));
    case 'channels.leave':
      return settle(what, ch.leave());
    case 'channels.deposit':
      return settle(what, ch.deposit(p.amount, signer('deposit_tx')));
    case 'channels.withdraw':
      return settle(what, ch.withdraw(p.amount, signer('withdraw_tx')));
    case 'channels.get.balances':
      if (step.id) return settle(what, ch.balances(p.accounts));
      break;
    case 'channels.get.offchain_state':
      if (step.id) return settle(what, ch.state());
      break;
    default:
      break;
  }
  if (step.id) return settle(what, call(ch, step.method, p));
  notify(ch, step.method, p);
  return undefined;
}

async function run() {
  const clientIndex = new Map(); // conn -> client frames so far
  let done = 0;
  for (const step of script.steps) {
    const conn = Number(step.conn);
    await waitFor(() => afterMet(step.after), `step ${step.step} (${step.do} ${step.method ?? ''} on connection ${conn}): waiting for node frames ${JSON.stringify(step.after)}`);
    if (step.do === 'open') {
      current = `step ${step.step}: opening connection ${conn}`;
      await openConn(step);
    } else if (step.do === 'close') {
      const state = conns.get(conn);
      log(state.role, 'disconnects', conn);
      state.channel.disconnect();
      await waitFor(() => state.closed, `step ${step.step}: closing connection ${conn}`);
    } else {
      const state = conns.get(conn);
      const index = (clientIndex.get(conn) ?? 0) + 1;
      clientIndex.set(conn, index);
      if (step.do === 'sign') {
        const waiting = state.signTurnWaiters.shift();
        if (waiting) waiting(step); else state.signTurn = step;
      } else {
        doSend(state, step);
      }
      await waitFor(() => state.sent >= index, `step ${step.step} (${step.do} ${step.method}, frame ${step.frame}) on connection ${conn}: waiting for the SDK to send it`);
    }
    done += 1;
  }
  for (const state of conns.values()) {
    await waitFor(() => state.received >= state.entry.node_frames, `the end of connection ${state.conn}: ${state.entry.node_frames} node frames`);
  }
  return done;
}

function summary(ok, done) {
  return JSON.stringify({
    ok,
    steps_done: done,
    steps: script.steps.length,
    waiting_for: ok ? null : current,
    connections: [...conns.values()].map((s) => ({
      conn: s.conn, role: s.role, received: s.received, expected: s.entry.node_frames, sent: s.sent,
      status: s.endStatus ?? s.channel?.status() ?? null, pings: s.pings, pongs: s.pongs,
    })),
    errors,
  });
}

const timer = setTimeout(() => {
  process.stdout.write(`${summary(false, null)}\n`);
  process.exit(1);
}, Number(args.timeout) * 1000);

try {
  const done = await run();
  clearTimeout(timer);
  // Keep the connections open a while (the SDK pings 10 s after connecting, again 10 s after each pong
  // it accepts, and gives up 15 s after an unanswered ping).
  if (Number(args.linger) > 0) await new Promise((resolve) => { setTimeout(resolve, Number(args.linger) * 1000); });
  for (const state of conns.values()) {
    state.endStatus = state.channel.status();
    if (!state.closed) state.channel.disconnect();
  }
  process.stdout.write(`${summary(true, done)}\n`);
  process.exit(0);
} catch (error) {
  clearTimeout(timer);
  errors.push({ error: String(error?.stack ?? error) });
  process.stdout.write(`${summary(false, null)}\n`);
  process.exit(1);
}
