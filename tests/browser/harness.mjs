// Test harness for the browser tests: one kefu-local process per test (free loopback
// port, fresh data dir) and one headless Chromium per test (fresh profile), both torn
// down by the test's `after` hook and, as a last resort, when this process exits.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** The kefu-local binary built by run.sh. */
const KEFU_LOCAL = requiredEnv("KEFU_LOCAL_BIN");
/** Debian's Chromium (never a browser downloaded by a test tool). */
const CHROMIUM = requiredEnv("KEFU_CHROMIUM");

/** How long the runner may take to answer /healthz (a cold debug build loads the FAQ). */
const STARTUP_TIMEOUT_MS = 60_000;
/** How long a stopping runner gets before SIGKILL. */
const STOP_GRACE_MS = 3_000;

/**
 * No network on the test machines: without these flags Chromium keeps trying to reach
 * Google services (component updates, sync, QUIC probes) and slows everything down.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Every runner still alive, killed synchronously if the test process exits early. */
const live = new Set();
/** Every temporary directory not yet removed, removed then too (best effort). */
const leftovers = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  for (const dir of leftovers) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A browser still shutting down may hold its profile; /tmp is cleaned eventually.
    }
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => process.exit(130));
}

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with tests/browser/run.sh`);
  return value;
}

/** A loopback port that was free a moment ago. */
export async function freePort() {
  const probe = createServer();
  await new Promise((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", resolve);
  });
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Teardown for one test: `defer`red steps run last-in first-out in the test's `after`
 * hook (the browser closes before the runner stops, the runner stops before its data dir
 * goes), and every step runs even when an earlier one fails.
 */
export class Scope {
  constructor(t) {
    this.t = t;
    this.steps = [];
    t.after(async () => {
      const errors = [];
      for (const step of this.steps.reverse()) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, "teardown failed");
    });
  }

  defer(step) {
    this.steps.push(step);
  }

  /** A fresh temporary directory, removed at teardown. */
  tempDir(prefix) {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    leftovers.add(dir);
    this.defer(() => {
      rmSync(dir, { recursive: true, force: true });
      leftovers.delete(dir);
    });
    return dir;
  }
}

/**
 * A kefu-local process on 127.0.0.1:`port` with `dataDir`. `start()` resolves once GET
 * /healthz answers 200 and may be called again after `stop()` or `kill()`, on the same
 * port and data dir; stopping a stopped runner does nothing.
 */
export class Kefu {
  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.log = "";
  }

  /** Starts a runner whose teardown belongs to `scope`. */
  static async start(scope) {
    const kefu = new Kefu(await freePort(), scope.tempDir("kefu-browser-data-"));
    scope.defer(async () => {
      await kefu.stop();
      // Warnings and errors only (KEFU_LOG=warn): empty when all went well.
      if (kefu.log.trim()) scope.t.diagnostic(`kefu-local log:\n${kefu.log}`);
    });
    await kefu.start();
    return kefu;
  }

  async start() {
    if (this.child) throw new Error("kefu-local is already running");
    const child = spawn(KEFU_LOCAL, [], {
      env: {
        ...process.env,
        KEFU_HTTP_ADDR: `127.0.0.1:${this.port}`,
        KEFU_DATA_DIR: this.dataDir,
        KEFU_SMTP_ADDR: "127.0.0.1:0",
        KEFU_LOG: process.env.KEFU_LOG || "warn",
        NO_COLOR: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    live.add(child);
    // The runner logs to stdout; both streams are kept (the tail) for failure messages.
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        this.log = (this.log + chunk).slice(-8_000);
      });
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.once("exit", () => live.delete(child));
    this.exited = exited;

    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`kefu-local exited during startup (${child.exitCode ?? child.signalCode}):\n${this.log}`);
      }
      if (await this.healthy()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.stop();
    throw new Error(`kefu-local was not healthy within ${STARTUP_TIMEOUT_MS} ms:\n${this.log}`);
  }

  async healthy() {
    try {
      const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after a grace period (open long polls delay a graceful stop). */
  async stop() {
    await this.#end("SIGTERM", STOP_GRACE_MS);
  }

  /** SIGKILL: the runner dies at once, as in a crash. */
  async kill() {
    await this.#end("SIGKILL", STOP_GRACE_MS);
  }

  async #end(signal, graceMs) {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    live.delete(child);
  }
}

/**
 * Headless Chromium with a fresh profile and one page, closed at `scope`'s teardown.
 * Uncaught page errors are collected in `problems`.
 */
export async function openBrowser(scope) {
  const profile = scope.tempDir("kefu-browser-profile-");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 800, height: 720 },
    locale: "zh-CN",
    timeout: 60_000,
  });
  // Deferred after the profile dir, so Chromium is gone before the profile is removed.
  scope.defer(() => context.close());
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return { context, page, problems };
}

/** A minimal client of the agent API, as an agent's console would use it. */
export class Agent {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  static async login(baseUrl, username = "demo", password = "demo") {
    const res = await fetch(`${baseUrl}/v1/agent/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await res.json();
    if (res.status !== 200 || !body.token) {
      throw new Error(`agent login: HTTP ${res.status} ${JSON.stringify(body)}`);
    }
    return new Agent(baseUrl, body.token);
  }

  async call(method, path, body) {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** Waits until `conversationId` is waiting in some queue; returns that queue's name. */
  async waitUntilQueued(conversationId, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, body } = await this.call("GET", "/v1/agent/queues");
      if (status !== 200) throw new Error(`queues: HTTP ${status} ${JSON.stringify(body)}`);
      const queue = body.queues.find((q) => q.waiting.some((w) => w.conversation_id === conversationId));
      if (queue) return queue.name;
      if (Date.now() > deadline) {
        throw new Error(`conversation ${conversationId} never queued: ${JSON.stringify(body)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The chat widget on the demo page, driven as a customer drives it. */
export class Widget {
  constructor(page) {
    this.page = page;
    // The highest `after` the current document has long-polled with, and who waits for it.
    this.polledAfter = -1;
    this.pollWaiters = [];
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) this.polledAfter = -1;
    });
    page.on("request", (req) => {
      const url = new URL(req.url());
      if (req.method() !== "GET" || url.pathname !== "/v1/web/messages") return;
      this.polledAfter = Math.max(this.polledAfter, Number(url.searchParams.get("after")));
      this.pollWaiters = this.pollWaiters.filter((waiter) => !waiter(this.polledAfter));
    });
  }

  /** Opens the demo page and waits until the widget has mounted. */
  async open(baseUrl) {
    await this.page.goto(`${baseUrl}/`);
    await this.page.locator(".kefu-input").waitFor();
  }

  /** Types `text` and presses the send button. */
  async send(text) {
    await this.page.locator(".kefu-input").fill(text);
    await this.page.locator("form.kefu-form button[type=submit]").click();
  }

  /** The bubbles by `author` whose text contains `text`. */
  bubbles(author, text) {
    const all = this.page.locator(`.kefu-msg[data-author="${author}"]`);
    return text === undefined ? all : all.filter({ hasText: text });
  }

  /** Waits for a bubble by `author` containing `text`; a timeout shows what was there. */
  async waitForBubble(author, text) {
    const bubble = this.bubbles(author, text);
    try {
      await bubble.first().waitFor();
    } catch (err) {
      const shown = await this.messages().catch(() => "?");
      const status = await this.status().catch(() => "?");
      throw new Error(
        `no ${author} bubble with "${text}"; shown: ${JSON.stringify(shown)}; status: "${status}"`,
        { cause: err },
      );
    }
    return bubble;
  }

  /** Every bubble in order: { author, seq, text }. */
  messages() {
    return this.page.locator(".kefu-msg").evaluateAll((rows) =>
      rows.map((row) => ({ author: row.dataset.author, seq: row.dataset.seq, text: row.textContent })),
    );
  }

  /** The highest seq shown. */
  async lastSeq() {
    return Math.max(0, ...(await this.messages()).map((m) => Number(m.seq)));
  }

  /** The status line's text. */
  status() {
    return this.page.locator(".kefu-status").textContent();
  }

  /** The conversation the widget keeps in localStorage. */
  async conversationId() {
    const session = await this.page.evaluate(() => JSON.parse(localStorage.getItem("kefu.session") || "null"));
    if (!session || !session.conversation_id) throw new Error(`no session in localStorage: ${JSON.stringify(session)}`);
    return session.conversation_id;
  }

  /**
   * Resolves once the current document has long-polled for messages after `seq` (or
   * later): by then the widget has rendered everything up to `seq`, so a count of
   * bubbles taken afterwards is final.
   */
  pollAfter(seq, timeoutMs = 15_000) {
    if (this.polledAfter >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the widget did not poll after seq ${seq} (last: ${this.polledAfter})`)),
        timeoutMs,
      );
      this.pollWaiters.push((after) => {
        if (after < seq) return false;
        clearTimeout(timer);
        resolve();
        return true;
      });
    });
  }
}
