// The console end to end: Debian's Chromium driven by playwright-core (no
// browser download) against the broker tests/integration/test_console.py
// started. Talks to that script on stdout/stdin: `@@restart-broker` asks it to
// restart the broker (it answers `ok`), `@@done` says every check passed.
// Env: GW_URL, GW_TOKEN_{ALICE,BOB,CAROL,DAN}, GW_CHROMIUM, GW_SCREENSHOTS;
// issue 17's data, made by that script: GW_WORKFLOW_RUN (a failed, compensated
// workflow), GW_CHECKED_RUN (a run waiting for approval whose plan failed its
// checks), GW_DRIFTED_RESOURCE (a resource whose last drift check drifted).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const URL_ = process.env.GW_URL;
const T = {
  alice: process.env.GW_TOKEN_ALICE,
  bob: process.env.GW_TOKEN_BOB,
  carol: process.env.GW_TOKEN_CAROL,
  dan: process.env.GW_TOKEN_DAN,
};
const SHOTS = process.env.GW_SCREENSHOTS;
const WF_RUN = process.env.GW_WORKFLOW_RUN;
const CHECKED_RUN = process.env.GW_CHECKED_RUN;
const DRIFTED = process.env.GW_DRIFTED_RESOURCE;
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const log = (...a) => console.error('[e2e]', ...a);
const failures = [];
function check(cond, what, detail) {
  if (cond) {
    log('ok -', what);
    return;
  }
  log('FAIL -', what, detail ?? '');
  failures.push(what + (detail ? ': ' + JSON.stringify(detail) : ''));
}
function fatal(what, detail) {
  check(false, what, detail);
  throw new Error(what);
}

const browser = await chromium.launch({ executablePath: process.env.GW_CHROMIUM || '/usr/bin/chromium', args: FLAGS, headless: true });
const cspViolations = [];
const people = [];

async function person(name, viewport = { width: 1280, height: 900 }) {
  const ctx = await browser.newContext({ viewport, baseURL: URL_ });
  ctx.setDefaultTimeout(30000);
  const page = await ctx.newPage();
  people.push({ name, page });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/.test(m.text()) && !/unsafe-eval/.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => failures.push(`${name}: uncaught page error: ${e.message}`));
  return { name, ctx, page };
}

async function axe(page, label) {
  await page.evaluate(AXE + '\n;0');
  const v = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((x) => x.impact === 'serious' || x.impact === 'critical')
      .map((x) => ({ id: x.id, impact: x.impact, nodes: x.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  check(v.length === 0, `axe: no serious/critical violation on ${label}`, v);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}

async function signIn(p, token, { keyboard = false } = {}) {
  const { page } = p;
  await page.goto('/ui/');
  await page.waitForURL(/\/ui\/login/);
  if (keyboard) {
    // Keyboard only: Tab to the token field, type, Enter.
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => document.activeElement?.id === 'token')) break;
    }
    check(await page.evaluate(() => document.activeElement?.id === 'token'), `${p.name}: Tab reaches the token field`);
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('API token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('heading', { name: 'Catalog' }).waitFor();
  check(true, `${p.name} signed in`);
}

async function runStatus(page) {
  return (await page.locator('h1 .badge').textContent())?.trim();
}
async function waitStatus(page, re, timeout = 60000) {
  await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('h1 .badge')?.textContent ?? ''), re.source, { timeout });
}
function runIdOf(page) {
  const m = /\/ui\/runs\/([0-9a-f-]{36})/.exec(page.url());
  return m && m[1];
}
async function api(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const s = await (await fetch('/v1/session')).json();
      const r = await fetch(path, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      let j = null;
      try {
        j = await r.json();
      } catch {
        /* empty */
      }
      return { status: r.status, body: j };
    },
    { method, path, body },
  );
}

try {
  // ---- sign in, catalog -----------------------------------------------------
  const bob = await person('bob');
  await bob.page.goto('/ui/');
  await bob.page.waitForURL(/\/ui\/login/);
  const resp = await bob.page.request.get('/ui/');
  const csp = resp.headers()['content-security-policy'] ?? '';
  check(/script-src 'self'/.test(csp) && !/script-src[^;]*unsafe-inline/.test(csp), 'the console is served with a CSP without unsafe-inline scripts', csp);
  await axe(bob.page, 'login');
  await shot(bob.page, 'login');
  await signIn(bob, T.bob);
  const cookies = await bob.ctx.cookies();
  const sc = cookies.find((c) => c.name === 'gw_session');
  check(sc && sc.httpOnly && sc.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict', sc);
  await bob.page.getByRole('link', { name: 'Deploy' }).waitFor();
  check((await bob.page.locator('li.card', { hasText: 'Deploy' }).locator('.badge.approval').count()) === 1, 'the catalog marks the action that needs approval');
  await bob.page.getByRole('searchbox').fill('echo');
  check((await bob.page.locator('ul.cards > li').count()) === 1, 'search narrows the catalog');
  await bob.page.getByRole('searchbox').fill('');
  await axe(bob.page, 'catalog');
  await shot(bob.page, 'catalog');

  // ---- request: a field error, then a run with live logs ---------------------
  await bob.page.getByRole('link', { name: 'Echo a message' }).click();
  await bob.page.getByLabel(/Message/).fill('x'.repeat(201));
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  const fieldErr = bob.page.locator('.form-group:has(#in_message)').getByText(/200/);
  await fieldErr.first().waitFor();
  check(true, 'a too-long message shows its error on the message field');
  check(runIdOf(bob.page) === null, 'and no run was made');
  await axe(bob.page, 'request');
  await shot(bob.page, 'request');
  await bob.page.getByLabel(/Message/).fill('hello from the console');
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  await bob.page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}/);
  await bob.page.locator('.logline', { hasText: 'says: hello from the console' }).waitFor();
  check(true, 'the run page shows the live log line');
  await waitStatus(bob.page, /succeeded/);
  await bob.page.getByRole('heading', { name: 'Outputs' }).waitFor();
  const echoRun = runIdOf(bob.page);

  // ---- logs survive a broker restart -----------------------------------------
  await bob.page.goto('/ui/actions/slow-log');
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  await bob.page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}/);
  const slowRun = runIdOf(bob.page);
  await bob.page.waitForFunction(() => Number(document.querySelector('[data-testid=logs]')?.getAttribute('data-lines')) >= 8, null, { timeout: 60000 });
  console.log('@@restart-broker');
  const ack = await stdinLines.next();
  check(ack.value === 'ok', 'the broker was restarted mid-run', ack.value);
  await waitStatus(bob.page, /succeeded/, 120000);
  await bob.page.waitForFunction(() => Number(document.querySelector('[data-testid=logs]')?.getAttribute('data-lines')) >= 60, null, { timeout: 60000 });
  await bob.page.getByText(/· complete/).waitFor();
  check(true, 'the log view knows the stream ended');
  const shown = Number(await bob.page.locator('[data-testid=logs]').getAttribute('data-lines'));
  const stored = await api(bob.page, 'GET', `/v1/runs/${slowRun}/logs?limit=10000`);
  check(stored.status === 200 && stored.body.items.length === 60, 'the broker stored 60 lines', stored.body?.items?.length);
  check(shown === 60, 'the log view shows each of the 60 lines once after the restart (no gap, no duplicate)', shown);
  const green = await bob.page.locator('.logline .ansi-green-fg').count();
  check(green > 0, 'ANSI colours are rendered', green);
  await axe(bob.page, 'run');
  await shot(bob.page, 'run');

  // ---- approvals: bob cannot approve his own run, carol can -------------------
  await bob.page.goto('/ui/actions/deploy');
  await bob.page.getByLabel(/Environment/).selectOption('prod');
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  await bob.page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}/);
  const deployRun = runIdOf(bob.page);
  await waitStatus(bob.page, /pending approval/);
  check((await bob.page.getByRole('button', { name: 'Approve' }).count()) === 0, "the requester's own run has no Approve button");
  check(/You requested this run/.test((await bob.page.getByTestId('cannot-decide').textContent()) ?? ''), 'and says why he cannot approve it');
  const refused = await api(bob.page, 'POST', `/v1/runs/${deployRun}/decisions`, { decision: 'approve' });
  check(refused.status === 403, 'the API refuses his approval', refused);
  await bob.page.goto('/ui/approvals');
  await bob.page.locator(`li[data-run="${deployRun}"]`).getByTestId('cannot-decide').waitFor();
  check(true, 'his inbox lists his waiting request with the reason');

  const carol = await person('carol', { width: 390, height: 844 }); // a phone
  await signIn(carol, T.carol, { keyboard: true });
  await carol.page.goto(`/ui/runs/${deployRun}`); // the deep link a notification carries
  await waitStatus(carol.page, /pending approval/);
  check((await carol.page.getByRole('button', { name: 'Approve' }).count()) === 1, 'the deep link opens the decision page for the approver');
  await carol.page.goto('/ui/approvals');
  const card = carol.page.locator(`li[data-run="${deployRun}"]`);
  await card.waitFor();
  check(/1 of 1/.test((await card.getByTestId('remaining').textContent()) ?? ''), 'the inbox says how many approvals are still needed');
  check(/left/.test(await card.textContent()), 'and the time left');
  const width = await carol.page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, 'the inbox fits a phone (no horizontal scroll)', width);
  await axe(carol.page, 'approvals (phone)');
  await shot(carol.page, 'approvals-phone');
  await card.getByLabel('Comment').fill('looks right');
  await card.getByRole('button', { name: 'Approve' }).click();
  await card.waitFor({ state: 'detached' });
  await bob.page.goto(`/ui/runs/${deployRun}`);
  await waitStatus(bob.page, /queued|running|succeeded/);
  check(/carol/.test(await bob.page.locator('.decisions').textContent()), "the run shows carol's approval");

  // ---- plan check findings: shown, and acknowledged before approving ----------
  await carol.page.goto('/ui/approvals');
  const fcard = carol.page.locator(`li[data-run="${CHECKED_RUN}"]`);
  await fcard.waitFor();
  const frows = fcard.locator('[data-testid=findings] li[data-rule]');
  check((await frows.count()) === 2, 'the approval card lists the plan check findings', await frows.count());
  const first = (await frows.first().textContent()) ?? '';
  check(/required-labels/.test(first) && /high/.test(first) && /terraform_data\.env/.test(first) && /labels\.owner is missing/.test(first),
    'each finding with its rule, severity, address and message', first);
  const fapprove = fcard.getByRole('button', { name: 'Approve' });
  check(await fapprove.isDisabled(), 'Approve stays disabled until the findings are acknowledged');
  const noAck = await api(carol.page, 'POST', `/v1/runs/${CHECKED_RUN}/decisions`, { decision: 'approve' });
  check(noAck.status === 422 && JSON.stringify(noAck.body).includes('/acknowledge_findings'), 'the API refuses an approval without the acknowledgement', noAck);
  const fwidth = await carol.page.evaluate(() => document.documentElement.scrollWidth);
  check(fwidth <= 390, 'the findings fit a phone (no horizontal scroll)', fwidth);
  await axe(carol.page, 'approval with findings (phone)');
  await shot(carol.page, 'approval-findings-phone');
  await fcard.getByLabel(/I have read the 2 plan check finding/).check();
  await fapprove.click();
  await fcard.waitFor({ state: 'detached' });
  await bob.page.goto(`/ui/runs/${CHECKED_RUN}`);
  await waitStatus(bob.page, /queued|running|succeeded/);
  check(/carol/.test(await bob.page.locator('.decisions').textContent()), "the acknowledged approval is recorded");
  check((await bob.page.locator('[data-testid=findings] li[data-rule]').count()) === 2, 'the run page shows the findings too');

  // ---- a workflow's steps, its compensation, resume ----------------------------
  await bob.page.goto(`/ui/runs/${WF_RUN}`);
  await waitStatus(bob.page, /failed/);
  const wfs = bob.page.getByTestId('workflow');
  await wfs.locator('li[data-step=job]').waitFor();
  const order = await wfs.locator('li[data-step]').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-step')));
  check(JSON.stringify(order) === '["repo","job"]', 'the workflow run lists its steps in order', order);
  const badge = async (sel) => ((await wfs.locator(sel + ' .badge').first().textContent()) ?? '').trim();
  check((await badge('li[data-step=repo]')) === 'succeeded' && (await badge('li[data-step=job]')) === 'failed', 'each step with its status', [
    await badge('li[data-step=repo]'),
    await badge('li[data-step=job]'),
  ]);
  check(/the step that failed/.test((await wfs.locator('li[data-step=job]').textContent()) ?? ''), 'the failed step is marked');
  check((await badge('li[data-undo=repo]')) === 'succeeded', 'the undo run of the first step is shown');
  check(/^Compensated/.test((await wfs.getByTestId('compensated').textContent()) ?? ''), 'and the workflow says it was compensated');
  await axe(bob.page, 'workflow run');
  await shot(bob.page, 'workflow-run');
  await wfs.getByRole('link', { name: 'Step job run' }).click();
  await bob.page.getByTestId('parent-run').waitFor();
  check(/Step job of its workflow run/.test((await bob.page.getByTestId('parent-run').textContent()) ?? ''), 'a step run links back to its workflow');
  check((await runStatus(bob.page)) === 'failed', 'the step run has its own page with its status', await runStatus(bob.page));
  await bob.page.getByRole('link', { name: 'its workflow run' }).click();
  await bob.page.getByTestId('workflow').getByRole('button', { name: /Resume/ }).click();
  // Resumed: the undone repo step and the failed job run again; job fails again.
  await bob.page.locator('li[data-step=job]', { hasText: 'earlier' }).waitFor({ timeout: 90000 });
  await waitStatus(bob.page, /failed/, 90000);
  const resumed = await api(bob.page, 'GET', `/v1/runs/${WF_RUN}`);
  const jobRuns = (resumed.body?.steps ?? []).filter((x) => x.id === 'job' && x.operation === 'create');
  check(jobRuns.length === 2, 'Resume (with the CSRF header) ran the failed step again', resumed.body?.steps);

  // ---- resources: extend within bounds ---------------------------------------
  await bob.page.goto('/ui/actions/lease');
  await bob.page.getByLabel(/^name/i).fill('sbx-1');
  const ttlOpts = await bob.page.locator('#ttl option').evaluateAll((os) => os.map((o) => Number(o.value)));
  check(Math.max(...ttlOpts) === 7200, 'the TTL picker stops at max_seconds', ttlOpts);
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  await bob.page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}/);
  await waitStatus(bob.page, /succeeded/);
  await bob.page.getByRole('heading', { name: 'Resource' }).waitFor();
  await bob.page.getByRole('link', { name: 'Resources' }).click();
  const rcard = bob.page.locator('li[data-resource]', { hasText: 'sbx-1' }).first();
  await rcard.waitFor();
  const before = Date.parse(await rcard.getByTestId('expires').getAttribute('data-expires'));
  await rcard.getByLabel('Extend by').selectOption('3600');
  await rcard.getByRole('button', { name: 'Extend' }).click();
  await bob.page.getByText('Extended.').waitFor();
  const rcard2 = bob.page.locator('li[data-resource]', { hasText: 'sbx-1' }).first();
  const after = Date.parse(await rcard2.getByTestId('expires').getAttribute('data-expires'));
  check(after - before === 3600 * 1000, 'extending by 1h moves the expiry 1h later', { before, after });
  // Drift: the filter asks the API for drifted resources only.
  await bob.page.getByLabel('Drift', { exact: true }).selectOption('drifted');
  await bob.page.locator('li[data-resource]', { hasText: 'sbx-1' }).waitFor({ state: 'detached' });
  const dcard = bob.page.locator(`li[data-resource="${DRIFTED}"]`);
  await dcard.waitFor();
  check(/drifted \+1 ~0 −0/.test((await dcard.getByTestId('drift').textContent()) ?? ''), 'a drifted resource shows under the drift filter with its counts',
    await dcard.getByTestId('drift').textContent());
  check((await bob.page.locator('li[data-resource]').count()) === 1 && /drift=drifted/.test(bob.page.url()), 'and only it', bob.page.url());
  await axe(bob.page, 'resources (drifted)');
  await shot(bob.page, 'resources-drift');
  await bob.page.goto(`/ui/resources/${DRIFTED}`);
  await bob.page.getByText('terraform_data.replica[0]').first().waitFor();
  check(true, 'the resource page shows what drifted');
  await bob.page.goto('/ui/resources');
  await bob.page.locator('li[data-resource]', { hasText: 'sbx-1' }).waitFor();
  await axe(bob.page, 'resources');
  await shot(bob.page, 'resources');

  // ---- cancel a running run ---------------------------------------------------
  await bob.page.goto('/ui/actions/sleeper');
  await bob.page.getByRole('button', { name: 'Submit request' }).click();
  await bob.page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}/);
  await waitStatus(bob.page, /running/);
  await bob.page.getByRole('button', { name: 'Cancel run…' }).click();
  await bob.page.getByLabel('Reason (optional)').fill('not needed');
  await bob.page.getByRole('button', { name: 'Yes, cancel it' }).click();
  await waitStatus(bob.page, /cancelled/, 90000);
  check(true, 'the running run was cancelled');

  // ---- runs list ----------------------------------------------------------------
  await bob.page.goto('/ui/runs');
  await bob.page.locator(`tr[data-run="${echoRun}"]`).waitFor();
  check(true, 'the runs page lists his runs');
  await axe(bob.page, 'runs');
  await shot(bob.page, 'runs');

  // ---- another team's run is not found -----------------------------------------
  const dan = await person('dan');
  await signIn(dan, T.dan);
  await dan.page.goto(`/ui/runs/${echoRun}`);
  await dan.page.getByRole('heading', { name: 'Run not found' }).waitFor();
  check(true, "another team's run id in the URL shows not found");
  check((await dan.page.getByRole('link', { name: 'Audit' }).count()) === 0, 'the Audit link is hidden from a non-auditor');

  // ---- audit and dashboard as admin ---------------------------------------------
  const alice = await person('alice');
  await signIn(alice, T.alice);
  const verify = await api(alice.page, 'GET', '/v1/admin/audit/verify');
  await alice.page.getByRole('link', { name: 'Audit' }).click();
  await alice.page.locator('table.list tbody tr').first().waitFor();
  check(verify.status === 200, 'GET /v1/admin/audit/verify answers an admin', verify);
  const cs = alice.page.getByTestId('chain-status');
  await cs.waitFor();
  check(/Chain verified/.test(await cs.textContent()) === (verify.body.ok === true), 'the audit page shows the chain status the API gives', {
    page: await cs.textContent(),
    api: verify.body,
  });
  check(verify.body.ok === true, 'the chain verifies', verify.body);
  await axe(alice.page, 'audit');
  await shot(alice.page, 'audit');
  await alice.page.getByRole('link', { name: 'Dashboard' }).click();
  await alice.page.getByTestId('dashboard').waitFor();
  await alice.page.locator('.chart canvas').first().waitFor();
  check((await alice.page.locator('table.list tbody tr', { hasText: 'echo' }).count()) >= 1, 'the dashboard shows per-action rows with data');
  await axe(alice.page, 'dashboard');
  await shot(alice.page, 'dashboard');

  // ---- sign out ------------------------------------------------------------------
  await alice.page.getByRole('button', { name: 'Sign out' }).click();
  await alice.page.waitForURL(/\/ui\/login/);
  const after401 = await alice.page.evaluate(async () => (await fetch('/v1/me')).status);
  check(after401 === 401, 'after sign-out the API refuses the old cookie', after401);

  check(cspViolations.length === 0, 'no script blocked by the CSP (eval aside)', cspViolations.slice(0, 3));
} catch (e) {
  failures.push('exception: ' + (e?.stack ?? e));
  log(e?.stack ?? e);
  for (const p of people) {
    log(`${p.name} was at ${p.page.url()}; screenshot failure-${p.name}.png`);
    await p.page.screenshot({ path: join(SHOTS, `failure-${p.name}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}

if (failures.length) {
  log(`${failures.length} failure(s):\n  ` + failures.join('\n  '));
  process.exit(1);
}
console.log('@@done');
process.exit(0);
