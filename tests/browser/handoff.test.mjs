// A customer asks for a human; an agent claims the conversation through the agent API and
// the reply reaches the open page by long polling.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Agent, Kefu, Scope, Widget, openBrowser } from "./harness.mjs";
import { assertInOrder, assertNoDuplicates } from "./checks.mjs";

const AGENT_REPLY = "您好，我是客服小李";

test(
  "GIVEN an open chat WHEN the customer asks for a human and an agent claims and replies THEN the handover notice and the agent's reply appear without a reload",
  { timeout: 120_000 },
  async (t) => {
    const scope = new Scope(t);
    const kefu = await Kefu.start(scope);
    const { page, problems } = await openBrowser(scope);
    const widget = new Widget(page);
    await widget.open(kefu.url);

    await widget.send("转人工");
    await widget.waitForBubble("customer", "转人工");
    await widget.waitForBubble("bot", "正在为您转接人工客服");

    const conversation = await widget.conversationId();
    const agent = await Agent.login(kefu.url);
    await agent.waitUntilQueued(conversation);
    const claimed = await agent.call("POST", `/v1/agent/conversations/${conversation}/claim`);
    assert.equal(claimed.status, 200, `claim: ${JSON.stringify(claimed.body)}`);
    // Navigations would reset the page; the reply must arrive through the open long poll.
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations += 1;
    });
    const sent = await agent.call("POST", `/v1/agent/conversations/${conversation}/messages`, { text: AGENT_REPLY });
    assert.equal(sent.status, 201, `agent reply: ${JSON.stringify(sent.body)}`);

    const reply = await widget.waitForBubble("agent", AGENT_REPLY);
    assert.equal(await reply.getAttribute("data-seq"), String(sent.body.seq), "the bubble is the stored reply");
    assert.equal(navigations, 0, "the page was not reloaded");
    await widget.pollAfter(sent.body.seq);
    const messages = await widget.messages();
    assertNoDuplicates(messages);
    assertInOrder(messages);
    assert.equal(messages.at(-1).author, "agent", `the agent's reply is the latest bubble: ${JSON.stringify(messages)}`);
    assert.deepEqual(problems, []);
  },
);
