// Scoring end to end: the live rules are listed, a draft that weighs pricing visits more (and
// names a misspelt event type, which is warned about) is backtested over the demo company's
// history (band and stage changes, AUC for both sets), then published as a new version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard();

test('backtest a draft over the history, then publish it', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('link', { name: 'Scoring' }).click();
  const live = page.getByRole('region', { name: 'Live rules' });
  await live.getByRole('heading', { name: 'Live: seed, version 1' }).waitFor();
  assert.match(await live.getByTestId('live-rules').innerText(), /Visits the pricing page/);

  const draft = page.getByRole('region', { name: 'Draft' });
  const area = draft.getByLabel(/Rule set/);
  const set = JSON.parse(await area.inputValue());
  set.rules.find((r) => r.id === 'pricing-visit').points = 40;
  set.name = 'pricing-heavy';
  set.decay = { percent: 25, every_days: 90 };
  set.thresholds = { ...(set.thresholds || {}), sql: 50 };
  // A rule on a misspelt type is valid (any such name is a type) and scores nobody: warned.
  set.rules.push({ id: 'chats', kind: 'behaviour', on: 'chat_startd', points: 5 });
  await area.fill(JSON.stringify(set, null, 2));
  // While the answer is on its way (seconds on a large database; held back here until the
  // page has been looked at) the page says what it is doing, and neither a second press nor
  // Publish sends anything, nor asks for a confirmation that would then not be acted on.
  // Read in the page itself: Playwright's locators wait for the page being loaded.
  let posts = 0;
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/scoring', async (route) => {
    if (route.request().method() === 'POST') {
      posts += 1;
      await held;
    }
    await route.continue();
  });
  let dialogs = 0;
  const countDialog = (d) => { dialogs += 1; d.dismiss(); };
  page.on('dialog', countDialog);
  const shown = await page.evaluate(async () => {
    const form = document.querySelector('form[action="/scoring"]');
    const backtest = form.querySelector('button[value="backtest"]');
    backtest.click();
    // The note's text is set in the next frame, so that screen readers announce it.
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const seen = {
      status: form.querySelector('[role="status"]')?.textContent,
      pressed: backtest.getAttribute('aria-disabled'),
    };
    // Pressed again a moment later, and Publish, the first request still on its way.
    await new Promise((resolve) => setTimeout(resolve, 100));
    backtest.click();
    form.querySelector('button[value="publish"]').click();
    return seen;
  });
  assert.deepEqual(shown, {
    status: "Backtesting the draft over every contact's history: this takes a few seconds on a large database.",
    pressed: 'true',
  });
  release();

  const report = page.getByRole('region', { name: 'Backtest' });
  await report.waitFor();
  await page.unroute('**/scoring');
  page.off('dialog', countDialog);
  assert.equal(posts, 1, 'one request for two presses of Backtest and one of Publish');
  assert.equal(dialogs, 0, 'Publish asked nothing while the backtest was on its way');
  const typo = 'No chat_startd event has been recorded yet; did you mean chat_started?';
  assert.equal(await report.getByTestId('backtest-warnings').innerText(), typo);
  assert.ok(Number(await report.getByTestId('band-changes').innerText()) > 0, 'weighing pricing more moves someone');
  const aucs = await report.getByTestId('auc').allInnerTexts();
  assert.equal(aucs.length, 2);
  for (const a of aucs) assert.ok(Number(a) > 0 && Number(a) <= 1, `an AUC: ${a}`);
  // A lower sales-ready threshold makes more SQLs as of the backtest's date.
  assert.ok(Number(await report.getByTestId('stage-changes').innerText()) > 0, 'the threshold moves someone');
  const sql = report.getByTestId('backtest-stages').getByRole('row').filter({ hasText: /^SQL/ });
  const [sqlLive, sqlDraft] = (await sql.getByRole('cell').allInnerTexts()).slice(1, 3).map(Number);
  assert.ok(sqlDraft > sqlLive, `more SQLs under the draft: ${sqlLive} -> ${sqlDraft}`);
  await page.screenshot({ path: join(screenshots, 'scoring-backtest.png'), fullPage: true });

  page.once('dialog', (d) => d.accept());
  await page.getByRole('region', { name: 'Draft' }).getByRole('button', { name: 'Publish' }).click();
  await page.getByRole('status').filter({ hasText: 'Version 2 is live' }).waitFor();
  await live.getByRole('heading', { name: 'Live: pricing-heavy, version 2' }).waitFor();
  assert.equal(await live.getByTestId('decay').innerText(), 'Behaviour points decay by 25% every 90 days.');
  assert.equal(await live.getByTestId('live-rule-warnings').innerText(), typo, 'the live set says so too');
  await page.close();
});
