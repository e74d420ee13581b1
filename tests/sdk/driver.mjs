// Drive the official JavaScript SDK's Channel client (@aeternity/aepp-sdk 14) through an action script.
//
// Usage: node driver.mjs --sdk DIR --url ws://127.0.0.1:PORT/channel --script SCRIPT.json [--timeout S]
//                        [--linger S] [--verbose] [--fresh-accounts [--wrong-key]]
//
//   DIR      a directory whose node_modules holds @aeternity/aepp-sdk (the tests install 14.1.1 there)
//   SCRIPT   an action script (format 1) written by chanlog.replay.actions.action_script(..., "sdk14")
//
// Both participants run in this one process, each as a real SDK `Channel` connected to the URL with the
// recorded channel parameters (a connection with existing_channel_id/existing_fsm_id reconnects, with
// `reestablish: true` unless the recording's next client frame is channels.get.offchain_state). The SDK
// answers sign requests by itself and calls our `sign` callback; this app does what the recording's app did,
// step by step in transcript order, through the SDK's own API wherever it has one: `update` (transfers, with
// meta), `sendMessage`, `deposit`, `withdraw`, `shutdown`, `leave`, `createContract`, `callContract`,
// `forceProgress`, `cleanContractCalls`, `balances`, `state`, `poi`, `getContractState`, `getContractCall`,
// `callContractStatic`; any other request goes through the SDK's own RPC helper (`call` with an id, else
// `notify`). Sign requests the recording declined are declined by returning the recorded error code from the
// sign callback (an abort). Each step first waits until the node frames recorded before it have arrived.
// Transactions are signed with a fresh random key (the fake node compares the transaction inside
// `signed_tx`, not the signatures). Listeners go on before each open, so a rejected open is reported.
//
// --fresh-accounts: one freshly generated key pair per role (AccountMemory.generate()); the URLs name these
// accounts instead of the recorded ones (initiator_id, responder_id; a reconnect names the channel id the SDK
// learnt on that role's earlier connection), every sign callback signs with its role's key, and the ids in the
// script's action parameters (e.g. the from/to of a transfer) are replaced too: the fake node must run with
// --rebind. --wrong-key (with --fresh-accounts) signs with yet another key than the one the URL names.
// The summary then also holds `accounts` ({initiator, responder}) and `signed` (every signed_tx returned).
//
// --linger S keeps the connections open S seconds after the end (to see the SDK's pings answered).
// Prints one JSON summary line on stdout: {ok, steps_done, steps, waiting_for, connections: [{conn, role,
// received, expected, sent, status, pings, pongs}], errors: [...], unhandled: {"CONN METHOD": count},
// rejected: [...]}. `errors`: SDK errors (a divergence the fake node reported included); `unhandled`: node
// frames the SDK's state machine has no handler for in its state (it reports them and ignores them);
// `rejected`: API promises rejected by an error the recorded node sent.
// Exit status: 0 when every step was done and every connection received all its recorded node frames
// (or was closed by the SDK itself, as after a leave); 1 otherwise (timeout, the fake node closed a
// connection on a divergence, SDK error on a step); 2 bad usage.

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
    'fresh-accounts': { type: 'boolean', default: false },
    'wrong-key': { type: 'boolean', default: false },
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
let scriptText = readFileSync(args.script, 'utf8');
// --fresh-accounts: one key pair per role; the recorded ids in the script (URLs, action params) name them.
const fresh = {};
if (args['fresh-accounts']) {
  for (const role of ['initiator', 'responder']) fresh[role] = MemoryAccount.generate();
  const recorded = {};
  for (const entry of JsonBig.parse(scriptText).connections) {
    for (const role of ['initiator', 'responder']) recorded[role] ??= entry.params?.[`${role}_id`];
  }
  for (const role of ['initiator', 'responder']) {
    if (recorded[role]) scriptText = scriptText.replaceAll(recorded[role], fresh[role].address);
  }
}
const script = JsonBig.parse(scriptText);
const signedTxs = []; // --fresh-accounts: every signed_tx our sign callbacks returned
const NETWORK_ID = 'ae_chanlog_replay';
const log = (...parts) => { if (args.verbose) process.stderr.write(`[driver] ${parts.join(' ')}\n`); };

const errors = [];
const unhandled = {}; // "conn method" -> how many node frames the SDK's FSM had no handler for (it ignores them)
const rejected = []; // SDK API promises rejected by an error the recorded node sent
const conns = new Map(); // conn number -> state
const waiters = new Set();
let current = 'starting';
let fatal = null; // set when the play cannot go on (the fake node closed a connection on a divergence)

function wake() {
  for (const w of [...waiters]) {
    if (fatal !== null) { waiters.delete(w); w.reject(fatal); } else if (w.pred()) { waiters.delete(w); w.resolve(); }
  }
}

function fail(error) {
  if (fatal === null) fatal = new Error(error);
  wake();
}

function waitFor(pred, what) {
  current = what;
  if (fatal !== null) return Promise.reject(fatal);
  if (pred()) return Promise.resolve();
  return new Promise((resolve, reject) => waiters.add({ pred, resolve, reject }));
}

// A closed connection receives nothing more: waits for its node frames are over (the SDK closes its
// connection itself on a leave reply; what the node sends after that is not read).
function afterMet(after) {
  return Object.entries(after).every(([conn, n]) => {
    const state = conns.get(Number(conn));
    return (state?.received ?? 0) >= n || state?.closed === true;
  });
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
    signTurn: null, signTurnWaiters: [], outgoing: [], scriptedPings: 0,
    account: args['fresh-accounts'] && !args['wrong-key'] ? fresh[entry.role] : MemoryAccount.generate(),
    scriptedPingsSent: 0, closeCode: null,
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
  const signed = await state.account.signTransaction(tx, { networkId: NETWORK_ID });
  if (args['fresh-accounts']) signedTxs.push(signed);
  return signed;
}

function camel(key) {
  return key.replace(/_./g, (m) => m[1].toUpperCase());
}

// A connection that continues a channel (existing_channel_id + existing_fsm_id) is a reconnect: the SDK then
// asks for the off-chain state (channels.get.offchain_state) unless told it is a reestablish, which is what
// the recording shows when that is not the connection's first client frame.
function isReestablish(step) {
  const { params } = conns.get(Number(step.conn)).entry;
  if (params.existing_fsm_id == null && params.existing_channel_id == null) return false;
  const next = script.steps.find((s) => s.step > step.step && Number(s.conn) === Number(step.conn) && s.do !== 'open');
  return next?.method !== 'channels.get.offchain_state';
}

async function openConn(step) {
  const state = connState(Number(step.conn));
  const options = { url: args.url, sign: (tag, tx) => signFor(state, tag, tx) };
  for (const [k, v] of Object.entries(state.entry.params)) {
    if (k !== 'protocol') options[camel(k)] = v;
  }
  if (isReestablish(step)) options.reestablish = true;
  if (args['fresh-accounts'] && options.existingChannelId !== undefined) {
    // A reconnect names the channel this run opened (its id derives from the fresh accounts).
    for (const other of conns.values()) {
      if (other !== state && other.role === state.role && other.channel) {
        try { options.existingChannelId = other.channel.id(); } catch { /* not known on that connection */ }
      }
    }
  }
  log(state.role, 'opens connection', state.conn, options.reestablish ? '(reestablish)' : '');
  // Listeners go on before the open, as an application does, so that a rejected open is reported.
  const channel = new Channel();
  state.channel = channel;
  byChannel.set(channel, state);
  channel.on('error', (error) => {
    const incoming = error?.incomingMessage;
    if (error?.handlerError?.name === 'UnknownChannelStateError' && incoming !== undefined) {
      const key = `${state.conn} ${incoming.method ?? (incoming.error ? 'error' : 'response')}`;
      unhandled[key] = (unhandled[key] ?? 0) + 1;
      return;
    }
    const detail = incoming?.error ? ` (node error: ${incoming.error.message}${incoming.error.data?.[0]?.message ?? ''})` : '';
    errors.push({ conn: state.conn, error: `${error?.name ?? 'Error'}: ${String(error?.message ?? error)}${detail}` });
  });
  channel.on('statusChanged', (status) => {
    if (status === 'disconnected') state.closed = true;
    wake();
  });
  await Channel._initialize(channel, options);
  const ws = channel._websocket;
  const send = ws.send.bind(ws);
  ws.send = (data) => {
    const msg = JsonBig.parse(data);
    const ping = msg.method === 'channels.system' && msg.id === undefined && msg.params?.action === 'ping';
    if (ping && state.scriptedPings === 0) state.pings += 1;
    else {
      if (ping) { state.scriptedPings -= 1; state.scriptedPingsSent += 1; }
      state.sent += 1;
      state.outgoing.push(msg.method);
    }
    log(state.role, '-->', msg.method, msg.id === undefined ? '' : `id=${msg.id}`);
    send(data);
    setImmediate(wake);
  };
  const onclose = ws.onclose;
  ws.onclose = (event) => {
    state.closeCode = event.code;
    if (event.code === 4000) fail(`the fake node closed connection ${state.conn} on a divergence: ${event.reason}`);
    onclose(event);
  };
}

const settle = (what, promise) => promise.then(
  (result) => log(what, 'resolved', JsonBig.stringify(result ?? null).slice(0, 120)),
  (error) => {
    const message = `${what}: ${error?.name ?? 'Error'}: ${error?.message ?? error}`;
    log('rejected:', message);
    // A divergence reported by the fake node is an error; other rejections answer errors the node sent.
    if (String(error?.message).includes('chanlog replay: divergence')) errors.push({ error: message });
    else rejected.push(message);
  },
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
    case 'channels.update.new_contract':
      return settle(what, ch.createContract({
        code: p.code, callData: p.call_data, deposit: p.deposit, vmVersion: p.vm_version, abiVersion: p.abi_version,
      }, signer('update')));
    case 'channels.update.call_contract':
      return settle(what, ch.callContract({
        amount: p.amount, callData: p.call_data, contract: p.contract_id, abiVersion: p.abi_version,
      }, signer('update')));
    case 'channels.force_progress':
      return settle(what, ch.forceProgress({
        amount: p.amount, callData: p.call_data, contract: p.contract_id, abiVersion: p.abi_version,
        gasLimit: p.gas, gasPrice: p.gas_price,
      }, signer('force_progress_sign')));
    case 'channels.clean_contract_calls':
      return settle(what, ch.cleanContractCalls());
    case 'channels.system':
      if (p.action === 'ping' && !step.id) {
        state.scriptedPings += 1;
        notify(ch, step.method, p);
        return undefined;
      }
      break;
    default:
      break;
  }
  if (step.id) {
    switch (step.method) {
      case 'channels.get.balances':
        return settle(what, ch.balances(p.accounts));
      case 'channels.get.offchain_state':
        return settle(what, ch.state());
      case 'channels.get.poi':
        return settle(what, ch.poi({ accounts: p.accounts, contracts: p.contracts }));
      case 'channels.get.contract':
        return settle(what, ch.getContractState(p.pubkey));
      case 'channels.get.contract_call':
        return settle(what, ch.getContractCall({ caller: p.caller_id, contract: p.contract_id, round: p.round }));
      case 'channels.dry_run.call_contract':
        return settle(what, ch.callContractStatic({
          amount: p.amount, callData: p.call_data, contract: p.contract_id, abiVersion: p.abi_version,
        }));
      default:
        // Requests the SDK has no API for go through its own RPC helper (with an id).
        return settle(what, call(ch, step.method, p));
    }
  }
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
      if (state.closed) {
        state.selfClosed = true; // the SDK closed it already (leave): the recorded close is done
        log(state.role, 'connection', conn, 'closed by the SDK itself');
      } else {
        log(state.role, 'disconnects', conn);
        state.channel.disconnect();
      }
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
    // Every recorded node frame, and a pong for every scripted ping (pongs are not counted as node frames).
    await waitFor(() => (state.received >= state.entry.node_frames && state.pongs >= state.scriptedPingsSent)
      || state.selfClosed, `the end of connection ${state.conn}: ${state.entry.node_frames} node frames, `
      + `${state.scriptedPingsSent} pongs`);
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
    errors: errors.slice(0, 20).map((e) => ({ ...e, error: String(e.error).slice(0, 1000) })),
    unhandled,
    rejected,
    ...(args['fresh-accounts'] ? {
      accounts: { initiator: fresh.initiator.address, responder: fresh.responder.address }, signed: signedTxs,
    } : {}),
  });
}

// Exit once the summary is written (a pipe takes large writes asynchronously).
function finish(ok, done, code) {
  process.stdout.write(`${summary(ok, done)}\n`, () => process.exit(code));
}

const timer = setTimeout(() => {
  finish(false, null, 1);
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
  finish(true, done, 0);
} catch (error) {
  clearTimeout(timer);
  errors.push({ error: String(error?.stack ?? error) });
  finish(false, null, 1);
}
