// A customer asks FAQ questions in the widget on the demo page and reloads the page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kefu, Scope, Widget, openBrowser } from "./harness.mjs";
import { assertNoDuplicates } from "./checks.mjs";

const TEST_TIMEOUT_MS = 120_000;
/** Where the screenshot of an answered question goes, for a human to look at. */
const SCREENSHOT = process.env.KEFU_SCREENSHOT || "/tmp/kefu-widget.png";

async function openChat(t) {
  const scope = new Scope(t);
  const kefu = await Kefu.start(scope);
  const { page, problems } = await openBrowser(scope);
  const widget = new Widget(page);
  await widget.open(kefu.url);
  return { kefu, page, problems, widget };
}

test(
  "GIVEN the demo page WHEN the customer asks a Chinese FAQ question THEN their bubble and the FAQ answer appear",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { page, problems, widget } = await openChat(t);

    await widget.send("运费怎么算");

    await widget.waitForBubble("customer", "运费怎么算");
    // shipping-fee-zh: "单笔订单实付满99元全国包邮…"
    await widget.waitForBubble("bot", "包邮");
    assert.equal(await page.locator(".kefu-input").inputValue(), "", "the input is cleared after sending");
    await page.screenshot({ path: SCREENSHOT });
    t.diagnostic(`screenshot: ${SCREENSHOT}`);
    await widget.pollAfter(await widget.lastSeq());
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assert.deepEqual(
      messages.map((m) => m.author),
      ["customer", "bot"],
      `one question, one answer: ${JSON.stringify(messages)}`,
    );
    assert.deepEqual(problems, []);
  },
);

test(
  "GIVEN the demo page WHEN the customer asks an English FAQ question THEN the English FAQ answer appears",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { problems, widget } = await openChat(t);

    await widget.send("How long does a refund take?");

    await widget.waitForBubble("customer", "How long does a refund take?");
    // refund-time: "…issue the refund within 1–2 business days…"
    await widget.waitForBubble("bot", "business days");
    await widget.pollAfter(await widget.lastSeq());
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assert.deepEqual(
      messages.map((m) => m.author),
      ["customer", "bot"],
      `one question, one answer: ${JSON.stringify(messages)}`,
    );
    assert.deepEqual(problems, []);
  },
);

test(
  "GIVEN a conversation with answered questions WHEN the page is reloaded THEN the same history is shown, each message once",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { page, problems, widget } = await openChat(t);
    await widget.send("运费怎么算");
    await widget.waitForBubble("bot", "包邮");
    await widget.send("How long does a refund take?");
    await widget.waitForBubble("bot", "business days");
    const before = await widget.messages();
    const lastSeq = await widget.lastSeq();
    const conversation = await widget.conversationId();

    await page.reload();
    await page.locator(".kefu-input").waitFor();
    // The reloaded widget has rendered its history once it polls for what comes next.
    await widget.pollAfter(lastSeq);

    assert.equal(await widget.conversationId(), conversation, "the session survives the reload");
    const after = await widget.messages();
    assertNoDuplicates(after);
    assert.deepEqual(after, before, "the history after the reload is the history before it");
    assert.deepEqual(problems, []);
  },
);
