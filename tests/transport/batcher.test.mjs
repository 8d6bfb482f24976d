// js/coord.js `batcher`: what a task sends travels as one batch of frames, in the order
// sent, whether a message was queued alone (`add`) or came framed already (`add.framed`,
// the client's outbox). Run: node --test tests/transport/
import { test } from "node:test";
import assert from "node:assert/strict";
import { batcher } from "../../js/coord.js";

/** The frames of a batch, as arrays (the framing of src/protocol.rs `push_frame`). */
function frames(batch) {
  const out = [];
  for (let at = 0; at < batch.length; ) {
    const len = batch[at] | (batch[at + 1] << 16);
    out.push([...batch.subarray(at + 2, at + 2 + len)]);
    at += 2 + len;
  }
  return out;
}
const framed = (...msgs) => {
  const words = [];
  for (const m of msgs) words.push(m.length & 0xffff, m.length >>> 16, ...m);
  return Uint16Array.from(words);
};
const tick = () => new Promise((r) => setTimeout(r, 0));

test("one message: one batch of one frame, sent at the end of the task", async () => {
  const sent = [];
  const send = batcher((b) => sent.push(b));
  send(Uint16Array.of(3, 1, 4));
  assert.equal(sent.length, 0, "nothing before the microtask checkpoint");
  await tick();
  assert.equal(sent.length, 1);
  assert.deepEqual(frames(sent[0]), [[3, 1, 4]]);
});

test("messages and framed batches of one task keep their order, in one batch", async () => {
  const sent = [];
  const send = batcher((b) => sent.push(b));
  send(Uint16Array.of(1));
  send.framed(framed([2, 2], []));
  send(Uint16Array.of(3, 3, 3));
  send.framed(framed([4]));
  await tick();
  assert.equal(sent.length, 1);
  assert.deepEqual(frames(sent[0]), [[1], [2, 2], [], [3, 3, 3], [4]]);
});

test("a framed batch alone goes as it is; the next task makes a new batch", async () => {
  const sent = [];
  const send = batcher((b) => sent.push(b));
  const outbox = framed([7, 8], [9]);
  send.framed(outbox);
  await tick();
  send(Uint16Array.of(5));
  await tick();
  assert.equal(sent.length, 2);
  assert.equal(sent[0], outbox, "not copied");
  assert.deepEqual(frames(sent[1]), [[5]]);
});

test("a message is copied when queued: changing the caller's array later changes nothing", async () => {
  const sent = [];
  const send = batcher((b) => sent.push(b));
  const words = Uint16Array.of(1, 2);
  send(words);
  words[0] = 99;
  await tick();
  assert.deepEqual(frames(sent[0]), [[1, 2]]);
});
