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

test(
  "GIVEN an answer with a link and quick replies WHEN the customer taps a quick reply THEN it is sent and answered, and the buttons go away",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { page, problems, widget } = await openChat(t);
    await widget.send("What is your return policy?");

    // return-policy: "…within 7 days… Details: [return policy](https://shop.example.com/help/returns)."
    const answer = await widget.waitForBubble("bot", "7 days");
    const link = answer.locator("a");
    assert.equal(await link.getAttribute("href"), "https://shop.example.com/help/returns");
    assert.equal(await link.textContent(), "return policy");
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    assert.ok(!(await answer.textContent()).includes("]("), "the link markup is not shown");

    const buttons = page.locator(".kefu-quick button");
    assert.deepEqual(await buttons.allTextContents(), [
      "How long does a refund take?",
      "How much is shipping?",
    ]);
    await buttons.first().click();

    await widget.waitForBubble("customer", "How long does a refund take?");
    await widget.waitForBubble("bot", "business days");
    assert.equal(await page.locator(".kefu-quick").count(), 0, "the answered offer is gone");
    await widget.pollAfter(await widget.lastSeq());
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assert.deepEqual(
      messages.map((m) => m.author),
      ["customer", "bot", "customer", "bot"],
      `one tap, one question, one answer: ${JSON.stringify(messages)}`,
    );
    assert.deepEqual(problems, []);
  },
);

test(
  "GIVEN a bot message with HTML-looking text WHEN shown THEN it stays text and only http(s) links become links",
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const scope = new Scope(t);
    const kefu = await Kefu.start(scope);
    const { page, problems } = await openBrowser(scope);
    // Draw through the widget's own renderer: the first poll gets one crafted message.
    let served = false;
    await page.route(
      (url) => url.pathname === "/v1/web/messages",
      async (route) => {
        if (served || route.request().method() !== "GET") return route.fallback();
        served = true;
        await route.fulfill({
          status: 200,
          contentType: "application/json",
          body: JSON.stringify({
            messages: [
              {
                seq: 1,
                message_id: "m1",
                author: "bot",
                text: '<img src=x onerror="window.hacked=1"> [click](javascript:alert(1)) [ok](https://shop.example.com/a)',
                created_at: "2026-01-01T00:00:00Z",
              },
            ],
          }),
        });
      },
    );
    await new Widget(page).open(kefu.url);
    const bubble = page.locator('.kefu-msg[data-author="bot"]');
    await bubble.first().waitFor();
    assert.equal(await bubble.locator("img").count(), 0);
    assert.deepEqual(
      await bubble.locator("a").evaluateAll((links) => links.map((a) => a.getAttribute("href"))),
      ["https://shop.example.com/a"],
    );
    assert.equal(await page.evaluate(() => window.hacked), undefined);
    assert.deepEqual(problems, []);
  },
);
