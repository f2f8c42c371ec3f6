// The segment builder end to end: type a filter and watch the live count (and a mistake's
// column, and a misspelt event type or property with the fix offered), save the segment, see its size in
// the list and the segment on a member's page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard();

test('build a segment with a live count, save it, see it on a contact', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('link', { name: 'Segments' }).click();
  const builder = page.getByRole('region', { name: 'Segment builder' });
  const live = builder.getByTestId('live-count');

  // A mistake is shown with its column while typing.
  await builder.getByLabel('Filter').fill('count(email_opened, 30x) >= 1');
  await live.filter({ hasText: 'at column 23' }).waitFor();

  // A misspelt property of a recorded type: the filter counts nobody, and the builder says no
  // such event had it and offers the property meant, renaming it in that type's test only.
  await builder.getByLabel('Filter').fill('count(page_viewed where uri ~ "/pricing") >= 1 and not custom.uri is set');
  await builder.getByTestId('live-warnings').filter({ hasText: 'No page_viewed event has had a property uri; did you mean url?' }).waitFor();
  assert.equal(await live.locator('strong').innerText(), '0');
  // (So is the custom attribute of that name, which no contact has: the fix leaves it.)
  await builder.getByTestId('live-warnings').filter({ hasText: 'No contact has had a custom attribute uri' }).waitFor();
  await builder.getByTestId('live-warnings').getByRole('button', { name: 'Use url' }).click();
  await page.waitForFunction(() => {
    const count = document.querySelector('[data-testid="live-count"] strong');
    const warned = document.querySelector('[data-testid="live-warnings"]').textContent;
    return count && count.textContent !== '0' && !warned.includes('property uri');
  });
  assert.equal(
    await builder.getByTestId('live-warnings').innerText(),
    'No contact has had a custom attribute uri; it is empty for every contact until one has',
  );
  assert.equal(await builder.getByLabel('Filter').inputValue(), 'count(page_viewed where url ~ "/pricing") >= 1 and not custom.uri is set');

  // A misspelt event type parses (any such name is a type) and counts nobody: the builder
  // says no such event was ever recorded and offers the type meant, which fixes the filter.
  await builder.getByLabel('Name').fill('Opened and in DACH');
  // (The attribute of the same name is not an event type: the fix leaves it alone.)
  await builder.getByLabel('Filter').fill('count(emial_opened) >= 1 and region = "DACH" and not custom.emial_opened is set');
  const warnings = builder.getByTestId('live-warnings');
  await warnings.filter({ hasText: 'No emial_opened event has been recorded yet; did you mean email_opened?' }).waitFor();
  assert.equal(await live.locator('strong').innerText(), '0');
  await page.screenshot({ path: join(screenshots, 'segment-builder-misspelt.png'), fullPage: true });
  await warnings.getByRole('button', { name: 'Use email_opened' }).click();
  // The fixed filter is counted again: a count above nought, and only the attribute's warning.
  await page.waitForFunction(() => {
    const count = document.querySelector('[data-testid="live-count"] strong');
    const warned = document.querySelector('[data-testid="live-warnings"]').textContent;
    return count && count.textContent !== '0' && !warned.includes('emial_opened event');
  });
  assert.equal(await builder.getByLabel('Filter').inputValue(), 'count(email_opened) >= 1 and region = "DACH" and not custom.emial_opened is set');
  assert.equal(
    await warnings.innerText(),
    'No contact has had a custom attribute emial_opened; it is empty for every contact until one has',
    'the type\'s warning went with the misspelling',
  );
  await builder.getByText('Filter language').click();
  const types = builder.getByTestId('event-types');
  assert.match(await types.innerText(), /page_viewed.*email_opened/s);
  // With the properties each type's events have carried.
  assert.match(await types.innerText(), /page_viewed \([^)]*\burl\b[^)]*\)/);

  const count = Number(await live.locator('strong').innerText());
  assert.ok(count > 0, `the demo company has such contacts (saw ${count})`);
  const member = builder.getByTestId('live-sample').locator('a').first();
  const memberName = (await member.innerText()).trim();
  const memberHref = await member.getAttribute('href');
  await page.screenshot({ path: join(screenshots, 'segment-builder.png'), fullPage: true });

  await builder.getByRole('button', { name: 'Save segment' }).click();
  const row = page.locator('tr[data-segment="Opened and in DACH"]');
  await row.waitFor();
  assert.equal(Number(await row.getByTestId('member-count').innerText()), count, 'the saved size is the live count');

  await page.goto(`${env.orchard.base}${memberHref}`);
  await page.getByRole('heading', { name: memberName }).waitFor();
  assert.match(await page.getByTestId('contact-segments').innerText(), /Opened and in DACH/);
  await page.close();
});
