// Import, merge and catalogue upkeep end to end: an admin previews a CSV (how its columns were
// understood, which row is bad), imports it, finds the same person under two emails and merges
// them, and edits then deletes a lead magnet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard();

const csv = [
  '\uFEFFFirst Name,Last Name,Email,Company Name,Country/Region,Favourite colour',
  'Lena,Berg,lena.berg@northwind.example,Northwind,SE,teal',
  'Lena,Berg,LB@gmail.example,,,',
  'Oskar,Holm,oskar-at-northwind,Northwind,SE,',
].join('\r\n') + '\r\n';

test('an admin previews and imports a CSV, then merges a duplicate', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('link', { name: 'Import' }).click();
  await page.getByLabel('The file holds').selectOption('contacts');
  await page.getByLabel(/CSV file/).setInputFiles({ name: 'northwind.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Preview', exact: true }).click();

  const preview = page.getByRole('region', { name: 'Preview' });
  await preview.waitFor();
  assert.equal(await preview.getByTestId('imported').innerText(), '2');
  assert.equal(await preview.getByTestId('rejected').innerText(), '1');
  const mapping = await preview.getByTestId('mapping').innerText();
  assert.match(mapping, /First Name\s*→ first_name/i);
  assert.match(mapping, /Favourite colour\s*custom attribute/i);
  assert.match(await preview.getByTestId('rejects').innerText(), /4\s+email\s+\S/);
  await page.screenshot({ path: join(screenshots, 'import-preview.png'), fullPage: true });

  await preview.getByRole('button', { name: 'Import 2 rows' }).click();
  await page.getByRole('status').filter({ hasText: 'imported 2 rejected 1' }).waitFor();
  const download = page.getByRole('link', { name: /Download the rejected rows/ });
  assert.match(await download.getAttribute('href'), /^data:text\/csv/);

  // The same person twice: merge the Gmail address into the work one.
  await page.goto(`${env.orchard.base}/contacts?q=lb%40gmail`);
  assert.match(await page.getByTestId('total').innerText(), /^1 contact\b/);
  await page.goto(`${env.orchard.base}/contacts?q=lena.berg`);
  await page.getByRole('link', { name: 'Lena Berg' }).click();
  await page.getByText('Merge a duplicate into this contact').click();
  page.once('dialog', (d) => d.accept());
  await page.getByLabel("The duplicate's email").fill('lb@gmail.example');
  await page.getByRole('button', { name: 'Merge into this contact' }).click();
  await page.getByRole('status').filter({ hasText: 'Merged lb@gmail.example' }).waitFor();
  assert.match(await page.getByTestId('aliases').innerText(), /also lb@gmail\.example/);
  assert.match(await page.locator('#timeline').innerText(), /contact merged[\s\S]*merged_email lb@gmail\.example/);
  assert.match(await page.getByTestId('attributes').innerText(), /Favourite colour\s+teal/);
  await page.goto(`${env.orchard.base}/contacts?q=lb%40gmail`);
  assert.match(await page.getByTestId('total').innerText(), /^0 contacts\b/);
  await page.close();
});

test('a lead magnet is renamed, moved down the funnel and deleted', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('link', { name: 'Lead magnets' }).click();
  const top = page.getByRole('region', { name: 'top of funnel' });
  const item = top.locator('li').first();
  const name = (await item.locator('strong').innerText()).trim();
  await item.locator('summary', { hasText: 'Edit' }).click();
  const edit = item.getByRole('form', { name: `Edit ${name}` });
  await edit.getByLabel('Name').fill(`${name} (2027 edition)`);
  await edit.getByLabel('Funnel stage').selectOption('bottom');
  await edit.getByRole('button', { name: 'Save' }).click();
  const bottom = page.getByRole('region', { name: 'bottom of funnel' });
  const moved = bottom.locator('li', { hasText: `${name} (2027 edition)` });
  await moved.waitFor();
  assert.equal(await top.getByText(`${name} (2027 edition)`).count(), 0);

  await moved.locator('summary', { hasText: 'Edit' }).click();
  page.once('dialog', (d) => d.accept());
  await moved.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { name: 'Lead magnets' }).waitFor();
  assert.equal(await page.getByText(`${name} (2027 edition)`).count(), 0);
  await page.close();
});
