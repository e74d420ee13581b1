// Record once, replay on every run: a node --test test of an @aeternity/aepp-sdk 14 Channel against a channel
// session that chanlog recorded the first time the test ran (see the README, "Record once, replay on every run").
//
//   CHANLOG_NODE=ws://127.0.0.1:3014/channel npm test     # first run: records fixtures/open_channel.yaml
//   npm test                                              # later runs: replays it, no node needed
//
// The test starts `chanlog replay FIXTURE --record-mode once --node NODE --port 0` as a child process and reads
// the URL line it prints: while recording that URL is mitmdump (chanlog's recorder) in front of NODE; once the
// fixture exists it is chanlog's fake node serving it. The test is the same either way; chanlog's exit status
// says whether the recording was complete (or the replay matched what was recorded).
//
// Environment: CHANLOG (the command, default `chanlog`; e.g. `python -m chanlog`), CHANLOG_NODE (the node to
// record from, default ws://127.0.0.1:3014/channel), CHANLOG_FIXTURE (default fixtures/open_channel.yaml beside
// this file), CHANLOG_RECORD_MODE (none|once|all, default once).
//
// The flow is the one of the node's own test suite's init_per_group (chanlog's shipped example,
// transcripts/init_per_group.yaml): both participants open a channel, exchange a message, ask for the balances
// and wait until the channel is open. Without a node at hand, serve that log as a stand-in node:
//   chanlog replay --compat sdk14 --port 3014 transcripts/init_per_group.yaml

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Channel, MemoryAccount } from '@aeternity/aepp-sdk';

const here = path.dirname(fileURLToPath(import.meta.url));
const command = (process.env.CHANLOG ?? 'chanlog').split(' ').filter(Boolean);
const fixture = process.env.CHANLOG_FIXTURE ?? path.join(here, 'fixtures', 'open_channel.yaml');
const node = process.env.CHANLOG_NODE ?? 'ws://127.0.0.1:3014/channel';
const recordMode = process.env.CHANLOG_RECORD_MODE ?? 'once';

// The channel's parameters (those of the recorded log: a replay expects the same URLs).
const initiatorId = 'ak_mLjWgLbapr5CiVD2Q248aS2TQj9itXnoPv5tteXvZaJ8tdD2C';
const responderId = 'ak_26jAbCjYM16ppbhFG6PCQhv6HkwRAri7QNJfoEtb1R8amLscpt';
const params = {
  channelReserve: '2', initiatorAmount: '70000000000000', initiatorId, keepRunning: 'false', lockPeriod: '10',
  port: '13179', pushAmount: '1', responderAmount: '40000000000000', responderId,
};

// Start chanlog and read the URL line it prints on standard output once it listens.
async function startChanlog() {
  const child = spawn(command[0], [...command.slice(1), 'replay', fixture, '--record-mode', recordMode,
    '--node', node, '--port', '0', '--grace', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const [url] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`chanlog exited with status ${code} before its URL`); }),
  ]);
  assert.match(url, /^ws:\/\//);
  return { child, url };
}

function signer() {
  const account = MemoryAccount.generate();
  return (tag, tx) => account.signTransaction(tx, { networkId: 'ae_chanlog_replay' });
}

const until = (channel, wanted) => new Promise((resolve) => {
  if (channel.status() === wanted) resolve();
  channel.on('statusChanged', (status) => { if (status === wanted) resolve(); });
});

test('both participants open a channel, talk and read their balances', async () => {
  const { child, url } = await startChanlog();
  const exited = once(child, 'exit');
  const initiator = await Channel.initialize({
    ...params, url, role: 'initiator', host: 'localhost', sign: signer(),
  });
  const responder = await Channel.initialize({ ...params, url, role: 'responder', sign: signer() });

  const hello = new Promise((resolve) => { responder.on('message', resolve); });
  const helloBack = new Promise((resolve) => { initiator.on('message', resolve); });
  await until(initiator, 'signed');
  initiator.sendMessage('Hello', responderId);
  assert.equal((await hello).info, 'Hello');
  responder.sendMessage('Hello back', initiatorId);
  assert.equal((await helloBack).info, 'Hello back');
  const balances = await initiator.balances([initiatorId, responderId]);
  assert.ok(balances[initiatorId] !== undefined && balances[responderId] !== undefined);
  await Promise.all([until(initiator, 'open'), until(responder, 'open')]);

  initiator.disconnect();
  responder.disconnect();
  const [code] = await exited;
  assert.equal(code, 0, 'chanlog: the recording was incomplete or the replay diverged (its messages are above)');
});
