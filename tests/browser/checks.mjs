// Assertions on the widget's rendered messages ({ author, seq, text } rows).
import assert from "node:assert/strict";

/** Every bubble carries a seq, and no seq and no (author, text) pair is shown twice. */
export function assertNoDuplicates(messages) {
  const dump = JSON.stringify(messages);
  for (const m of messages) {
    assert.match(String(m.seq), /^[1-9][0-9]*$/, `every bubble has a seq: ${dump}`);
  }
  const seqs = messages.map((m) => m.seq);
  assert.equal(new Set(seqs).size, seqs.length, `a seq is shown twice: ${dump}`);
  const keys = messages.map((m) => `${m.author}\u0000${m.text}`);
  assert.equal(new Set(keys).size, keys.length, `a message is shown twice: ${dump}`);
}

/** Bubbles are in seq order, as the conversation happened. */
export function assertInOrder(messages) {
  const seqs = messages.map((m) => Number(m.seq));
  const sorted = [...seqs].sort((a, b) => a - b);
  assert.deepEqual(seqs, sorted, `bubbles out of order: ${JSON.stringify(messages)}`);
}
