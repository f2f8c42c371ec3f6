// Shared by the browser tests: start a real `orchard serve` on a fresh database and a real
// Chromium (Debian's, never a downloaded build), and stop both afterwards.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';
import { mkdirSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const screenshots = join(root, 'e2e', 'screenshots');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Starts `orchard serve --demo` on a fresh database (SQLite unless ORCHARD_E2E_DB is given),
 * with `settings` as more `ORCHARD_…` configuration variables.
 */
export async function startOrchard(settings = {}) {
  const bin = process.env.ORCHARD_BIN ?? join(root, 'target', 'debug', 'orchard');
  const port = await freePort();
  const db = process.env.ORCHARD_E2E_DB ?? `sqlite://${mkdtempSync(join(tmpdir(), 'orchard-e2e-'))}/e2e.db`;
  const proc = spawn(bin, ['serve', '--demo', '--db', db, '--bind', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, ORCHARD_LOG: 'warn,sqlx=error', ...settings },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; process.stderr.write(d); });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`orchard exited early (${proc.exitCode}):\n${stderr}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`orchard did not become healthy:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { base, stop: () => proc.kill('SIGTERM'), stderr: () => stderr };
}

export async function startBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function login(page, base, email = 'admin@orchard.demo', password = 'orchard-demo') {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/**
 * Registers a test file's setup: one `orchard serve --demo` and one Chromium for all its tests,
 * stopped afterwards. Returns an object whose `orchard` and `browser` are set before the tests run.
 * `settings`: configuration variables for that `orchard serve` (see `startOrchard`).
 */
export function useOrchard(settings = {}) {
  const env = { orchard: null, browser: null };
  before(async () => {
    env.orchard = await startOrchard(settings);
    env.browser = await startBrowser();
    mkdirSync(screenshots, { recursive: true });
  });
  after(async () => {
    await env.browser?.close();
    env.orchard?.stop();
  });
  return env;
}
