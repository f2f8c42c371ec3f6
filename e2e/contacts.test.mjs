// A person logs in to the demo company, searches the contacts and opens a contact's timeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard();

test('a wrong password is refused with a message', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base, 'admin@orchard.demo', 'not-the-password');
  await assert.doesNotReject(page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor());
  assert.match(page.url(), /\/login$/);
  await page.close();
});

test('log in, search contacts, open a timeline', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('heading', { name: 'Contacts' }).waitFor();
  assert.match(await page.getByTestId('viewer').innerText(), /Ada Admin/);
  const total = Number((await page.getByTestId('total').innerText()).split(' ')[0]);
  assert.ok(total >= 1000, `the demo company has its contacts (saw ${total})`);

  // Search for the second row's person by email and find exactly them.
  const email = (await page.locator('table.list tbody tr').nth(1).locator('small').innerText()).trim();
  await page.getByRole('searchbox', { name: 'Search' }).fill(email);
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/q=/);
  assert.equal(await page.locator('table.list tbody tr').count(), 1);
  assert.match(await page.getByTestId('total').innerText(), /^1 contact\b/);

  // Filtering by stage keeps only that stage.
  await page.goto(`${env.orchard.base}/contacts`);
  await page.getByRole('combobox', { name: 'Stage' }).selectOption('customer');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/stage=customer/);
  const stages = await page.locator('table.list tbody .stage').allInnerTexts();
  assert.ok(stages.length > 0 && stages.every((s) => s === 'customer'), stages.join(','));

  // Open a customer: attributes panel and a timeline that starts before they identified.
  await page.locator('table.list tbody tr a').first().click();
  await page.getByRole('heading', { name: 'Timeline' }).waitFor();
  const events = page.locator('#timeline li');
  assert.ok(await events.count() >= 3, 'the timeline lists the events');
  const text = await page.locator('#timeline').innerText();
  assert.match(text, /form submitted/);
  assert.match(text, /page viewed/);
  assert.match(text, /before identification/);
  // How they became a customer: the stage change, with its cause.
  const toCustomer = page.getByTestId('stage-change').filter({ hasText: '→ customer' });
  assert.match(await toCustomer.last().innerText(), /^\S+ → customer\s+\S/);
  assert.match(await page.getByLabel('Attributes').innerText(), /customer/);

  // The score explained: the rules behind it, each with its points, adding up to the score.
  const score = Number(await page.locator('.temp').first().innerText());
  const panel = page.getByRole('region', { name: 'Score' });
  assert.match(await panel.getByRole('heading').innerText(), new RegExp(`^Why ${score} points$`));
  assert.match(await panel.innerText(), /Rule set seed, version 1/);
  const rows = panel.getByTestId('score-explanation').locator('tbody tr');
  assert.ok(await rows.count() >= 1, 'a customer has had rules fire');
  assert.equal(Number(await rows.first().locator('td').nth(4).innerText()), score, 'the newest running total is the score');
  assert.ok(await panel.getByRole('img', { name: /Score over time/ }).isVisible());

  // The score on a past day: by the end of the newest change's day it was the score now;
  // long before the first, nought; a day to come is refused with a message.
  const newest = (await rows.first().locator('td').first().innerText()).slice(0, 10);
  const scoreOn = async (day) => {
    await panel.getByLabel('Score on').fill(day);
    await panel.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL(new RegExp(`score_at=${day}`));
  };
  await scoreOn(newest);
  const then = page.getByRole('region', { name: 'Score' }).getByTestId('score-then');
  assert.equal(await then.innerText(), `At the end of ${newest}: ${score} points by rule set seed, version 1`);
  await page.screenshot({ path: join(screenshots, 'contact.png'), fullPage: true });
  await scoreOn('2001-01-01');
  assert.match(await then.innerText(), /^At the end of 2001-01-01: 0 points/);
  await scoreOn('2999-01-01');
  await page.getByRole('alert').filter({ hasText: 'Score on: 2999-01-01 has not come yet.' }).waitFor();
  await page.close();
});

test('logging out ends the session', async () => {
  const page = await env.browser.newPage();
  await login(page, env.orchard.base);
  await page.getByRole('heading', { name: 'Contacts' }).waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${env.orchard.base}/contacts`);
  assert.match(page.url(), /\/login$/);
  await page.close();
});
