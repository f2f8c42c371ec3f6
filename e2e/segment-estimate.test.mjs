// The segment builder over more contacts than its live count reads: while typing, the count
// is an estimate from a sample, shown with its interval; "Count now" counts every contact.
// (The demo company's 5 000 contacts, with the live count set to read at most 1 000.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard({ ORCHARD_SEGMENT_PREVIEW_SAMPLE: '1000' });

test('a large database gets an estimate while typing and the exact count on asking', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('link', { name: 'Segments' }).click();
  const builder = page.getByRole('region', { name: 'Segment builder' });
  const live = builder.getByTestId('live-count');

  await builder.getByLabel('Filter').fill('count(email_opened, 90d) >= 1');
  const line = live.getByTestId('live-estimate');
  await line.waitFor();
  const shown = await live.locator('strong').innerText();
  assert.match(shown, /^≈ \d+$/);
  const estimate = Number(shown.slice(2));
  const m = (await line.innerText()).match(/^estimated from (\d+) of (\d+) contacts \(95%: (\d+)–(\d+)\); Count now counts every contact$/);
  assert.ok(m, `the estimate says what it rests on: ${await line.innerText()}`);
  const [evaluated, live_, low, high] = m.slice(1).map(Number);
  assert.ok(evaluated > 900 && evaluated <= 1000, `about a thousand read (${evaluated})`);
  assert.ok(live_ > 4900 && live_ <= 5000, `of the demo's contacts (${live_})`);
  assert.ok(low <= estimate && estimate <= high && low < high, `${low} ≤ ${estimate} ≤ ${high}`);
  assert.ok(estimate > 0, 'the demo company has contacts who opened an email lately');
  assert.ok(await builder.getByTestId('live-sample').locator('a').count() > 0, 'members are shown');
  await page.screenshot({ path: join(screenshots, 'segment-builder-estimate.png'), fullPage: true });

  // Every contact, on asking: a plain count, which the estimate was close to.
  await builder.getByRole('button', { name: 'Count now' }).click();
  // The page comes back with the count of every contact, and says so.
  await page.locator('[data-testid="live-count"][data-counted]').waitFor();
  const exact = Number(await builder.getByTestId('live-count').locator('strong').innerText());
  assert.ok(Number.isInteger(exact) && exact > 0, `a count of every contact (${exact})`);
  assert.equal(await builder.getByTestId('live-estimate').count(), 0, 'no estimate line');
  assert.equal(await builder.getByLabel('Filter').inputValue(), 'count(email_opened, 90d) >= 1');
  assert.ok(Math.abs(exact - estimate) <= high - low, `the estimate ${estimate} was near the count ${exact}`);
  await page.close();
});
