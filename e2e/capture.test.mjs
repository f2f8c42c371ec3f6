// Capture end to end: a marketer sets up a lead magnet and a form; a visitor views two pages,
// then submits the hosted form; the new contact's timeline shows both views and the submission
// with its UTM data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useOrchard, login, screenshots } from './harness.mjs';

const env = useOrchard();

test('a marketer sets up a form and a visitor becomes a lead with their history', async () => {
  const admin = await env.browser.newPage();
  await login(admin, env.orchard.base);
  await admin.getByRole('link', { name: 'Lead magnets' }).click();
  const newMagnet = admin.getByRole('region', { name: 'New lead magnet' });
  await newMagnet.getByLabel('Name').fill('Pipeline audit checklist');
  await newMagnet.getByLabel('Slug').fill('pipeline-audit');
  await newMagnet.getByLabel('Kind').fill('checklist');
  await newMagnet.getByLabel('Funnel stage').selectOption('top');
  await newMagnet.getByRole('button', { name: 'Create lead magnet' }).click();
  await admin.getByRole('region', { name: 'top of funnel' }).getByText('Pipeline audit checklist').waitFor();

  await admin.getByRole('link', { name: 'Forms', exact: true }).click();
  const newForm = admin.getByRole('region', { name: 'New form' });
  await newForm.getByLabel('Name', { exact: true }).fill('Get the pipeline audit');
  await newForm.getByLabel('Slug').fill('pipeline-audit-form');
  await newForm.getByLabel('Lead magnet').selectOption('pipeline-audit');
  await newForm.getByLabel('first name', { exact: true }).check();
  await newForm.getByLabel('company', { exact: true }).check();
  await newForm.getByLabel('Consent text').fill('Email me the checklist and related tips.');
  await newForm.getByRole('button', { name: 'Create form' }).click();
  const row = admin.locator('table.list tr', { hasText: 'Get the pipeline audit' });
  await row.waitFor();
  await row.getByText('Embed').click();
  assert.match(await row.locator('pre.snippet').innerText(), /action="http:\/\/127\.0\.0\.1:\d+\/f\/pipeline-audit-form"/);

  // The visitor: a tracked page, then the hosted form reached from a LinkedIn campaign.
  const visitorContext = await env.browser.newContext();
  const visitor = await visitorContext.newPage();
  await visitor.goto(`${env.orchard.base}/t/pv.gif?url=/pricing`);
  await visitor.goto(`${env.orchard.base}/f/pipeline-audit-form?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q4-audit`);
  // Forgetting the consent box: the server sends the form back with the field marked and
  // what was typed kept.
  await visitor.getByLabel('Email', { exact: true }).fill('Greta.Lind@Example.org');
  await visitor.getByLabel('First name').fill('Greta');
  await visitor.getByRole('button', { name: 'Send' }).click();
  await visitor.getByRole('alert').filter({ hasText: 'Please correct' }).waitFor();
  await visitor.getByText('please agree to continue').waitFor();
  assert.equal(await visitor.getByLabel('First name').inputValue(), 'Greta');
  await visitor.getByLabel('Company').fill('Lind Logistics');
  await visitor.getByLabel(/Email me the checklist/).check();
  await visitor.getByRole('button', { name: 'Send' }).click();
  await visitor.getByRole('status').filter({ hasText: 'Thank you' }).waitFor();

  // A second submission with the email in another case updates the same contact.
  await visitor.goto(`${env.orchard.base}/f/pipeline-audit-form`);
  await visitor.getByLabel('Email', { exact: true }).fill('greta.lind@example.ORG');
  await visitor.getByLabel(/Email me the checklist/).check();
  await visitor.getByRole('button', { name: 'Send' }).click();
  await visitor.getByRole('status').waitFor();
  await visitorContext.close();

  await admin.goto(`${env.orchard.base}/contacts?q=greta.lind`);
  assert.match(await admin.getByTestId('total').innerText(), /^1 contact\b/);
  await admin.getByRole('link', { name: 'Greta' }).click();
  await admin.getByRole('heading', { name: 'Timeline' }).waitFor();
  const timeline = await admin.locator('#timeline').innerText();
  assert.equal((timeline.match(/form submitted/g) ?? []).length, 2);
  assert.match(timeline, /page viewed \(before identification\)[\s\S]*\/f\/pipeline-audit-form/);
  assert.match(timeline, /\/pricing/);
  assert.match(timeline, /utm_source linkedin/);
  assert.match(timeline, /utm_campaign q4-audit/);
  const attribution = await admin.getByTestId('attribution').innerText();
  assert.match(attribution, /First touch\s+linkedin \/ paid_social · q4-audit/);
  assert.match(attribution, /magnet: pipeline-audit/);
  assert.match(await admin.getByTestId('consent').innerText(), /Email me the checklist/);
  // The pricing page seen before the submission made an MQL (further than the magnet's IQL),
  // and the step is on the timeline with its cause.
  assert.match(await admin.getByLabel('Attributes').innerText(), /MQL/);
  assert.match(timeline, /stage changed\s+subscriber → MQL\s+visited the pricing page/);
  await admin.screenshot({ path: join(screenshots, 'captured-lead.png'), fullPage: true });
  await admin.close();
});
