// Failures between the widget and the server: the widget says it is retrying, retries
// with the same client_message_id, and never shows a message twice.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kefu, Scope, Widget, openBrowser } from "./harness.mjs";
import { assertInOrder, assertNoDuplicates } from "./checks.mjs";

const TEST_TIMEOUT_MS = 120_000;

async function answeredChat(t) {
  const scope = new Scope(t);
  const kefu = await Kefu.start(scope);
  const { page, problems } = await openBrowser(scope);
  const widget = new Widget(page);
  await widget.open(kefu.url);
  await widget.send("运费怎么算");
  await widget.waitForBubble("bot", "包邮");
  return { kefu, page, problems, widget };
}

function statusShown(page) {
  return page.waitForFunction(() => document.querySelector(".kefu-status").textContent.trim() !== "");
}

function statusCleared(page) {
  return page.waitForFunction(() => document.querySelector(".kefu-status").textContent.trim() === "");
}

test(
  "GIVEN an open chat WHEN the server is down while the customer sends and then comes back THEN the widget shows it is retrying and every message appears once",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { kefu, page, problems, widget } = await answeredChat(t);

    await kefu.kill();
    await widget.send("How long does a refund take?");
    await statusShown(page);
    assert.equal(await widget.bubbles("customer", "refund").count(), 0, "nothing is shown as sent while the server is down");
    t.diagnostic(`status while down: ${await widget.status()}`);

    // Back on the same port and data dir (the widget retries for about 7 s).
    await kefu.start();
    await widget.waitForBubble("customer", "How long does a refund take?");
    await widget.waitForBubble("bot", "business days");
    await statusCleared(page);

    await widget.pollAfter(await widget.lastSeq());
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assertInOrder(messages);
    assert.deepEqual(
      messages.map((m) => m.author),
      ["customer", "bot", "customer", "bot"],
      `two questions, two answers: ${JSON.stringify(messages)}`,
    );
    assert.deepEqual(problems, []);
  },
);

test(
  "GIVEN a message the server stored WHEN its acknowledgement is lost as a 503 THEN the widget retries and the message and its answer appear once",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { page, problems, widget } = await answeredChat(t);
    let stored = 0;
    // The first POST reaches the server; the browser sees a 503 instead of its answer.
    await page.route("**/v1/web/messages", async (route) => {
      if (route.request().method() !== "POST" || stored > 0) return route.fallback();
      const real = await route.fetch();
      stored = real.status();
      await route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ error: { code: "unavailable", message: "try again" } }),
      });
    });

    await widget.send("How long does a refund take?");

    await widget.waitForBubble("customer", "How long does a refund take?");
    await widget.waitForBubble("bot", "business days");
    await statusCleared(page);
    assert.equal(stored, 202, "the first attempt was stored by the server");
    await widget.pollAfter(await widget.lastSeq());
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assertInOrder(messages);
    assert.deepEqual(
      messages.map((m) => m.author),
      ["customer", "bot", "customer", "bot"],
      `the retried question is stored and answered once: ${JSON.stringify(messages)}`,
    );
    assert.deepEqual(problems, []);
  },
);
