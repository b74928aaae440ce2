// Issue 17 in the console: a workflow's steps and undo runs, plan check
// findings (and their acknowledgement on approval), resource drift.
import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, waitFor, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { DecisionBox, PlanFindings } from './components/RunBits';
import { WorkflowSteps, workflowRows, ParentLink, inputsAt } from './components/Workflow';
import { DriftInfo } from './components/Drift';
import ResourcesPage from './pages/Resources';
import { SessionContext } from './session';
import { setCsrfToken, type Me, type Resource, type Run } from './api';

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

const bob: Me = {
  subject: 'bob',
  teams: ['payments'],
  roles: [],
  worker: false,
  permissions: [],
  actions: { scaffold: { run: {}, cancel: { scope: 'own' } }, env: { run: {}, decide_approvals: {} }, lease: { run: {} } },
  other_runs: {},
  policy: 't',
};

function wrap(ui: React.ReactNode, who: Me = bob, path = '/x') {
  return (
    <SessionContext.Provider value={{ session: null, me: who, refresh: async () => {}, signOut: async () => {} }}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/x" element={ui} />
          <Route path="/resources" element={ui} />
          <Route path="/resources/:id" element={ui} />
        </Routes>
      </MemoryRouter>
    </SessionContext.Provider>
  );
}

beforeEach(() => {
  vi.restoreAllMocks();
  setCsrfToken(null);
});

const failedWf: Run = {
  id: 'wf1',
  action: { id: 'scaffold' },
  worker_type: 'workflow',
  status: 'failed',
  reason: 'step_failed',
  attempt: 1,
  inputs: { name: 'svc' },
  requested_by: { subject: 'bob', teams: ['payments'] },
  created_at: '2026-01-01T00:00:00Z',
  // In the order they started: repo, job (failed), then repo's undo.
  steps: [
    { id: 'repo', run_id: 'r-repo', status: 'succeeded', operation: 'create' },
    { id: 'job', run_id: 'r-job', status: 'failed', operation: 'create' },
    { id: 'repo', run_id: 'u-repo', status: 'succeeded', operation: 'undo' },
  ],
  failed_step: 'job',
  compensated: true,
};

const defs = [
  { id: 'repo', worker_type: 'exec', undo: true, approval: false },
  { id: 'job', worker_type: 'exec', undo: false, approval: false },
  { id: 'env', worker_type: 'exec', undo: true, approval: true },
];

describe('workflowRows', () => {
  it('orders steps as the action defines them, with not-started and skipped ones', () => {
    const { steps, undos } = workflowRows({ ...failedWf, skipped_steps: ['env'] }, defs);
    expect(steps.map((s) => [s.id, s.status, s.failed])).toEqual([
      ['repo', 'succeeded', false],
      ['job', 'failed', true],
      ['env', 'skipped', false],
    ]);
    expect(undos.map((u) => u.run_id)).toEqual(['u-repo']);
    expect(workflowRows(failedWf, defs).steps[2].status).toBe('not_started');
  });
  it('keeps the latest run of a resumed step and lists the earlier ones', () => {
    const resumed: Run = {
      ...failedWf,
      status: 'running',
      steps: [...failedWf.steps!, { id: 'job', run_id: 'r-job2', status: 'running', operation: 'create' }],
    };
    const job = workflowRows(resumed, null).steps.find((s) => s.id === 'job')!;
    expect(job.run?.run_id).toBe('r-job2');
    expect(job.status).toBe('running');
    expect(job.earlier.map((e) => e.run_id)).toEqual(['r-job']);
  });
});

describe('WorkflowSteps', () => {
  it('shows each step with a link to its run, the undo runs, compensated, and resumes a failed workflow', async () => {
    setCsrfToken('csrf-1');
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const url = String(input);
      if (url === '/v1/actions/scaffold') return jsonResponse(200, { id: 'scaffold', steps: defs });
      if (url === '/v1/runs/wf1/resume') return jsonResponse(202, { ...failedWf, status: 'running' });
      return jsonResponse(404, { code: 'not_found' });
    });
    const changed = vi.fn();
    render(wrap(<WorkflowSteps run={failedWf} onChange={changed} />));
    await screen.findByText('env'); // the definition's third step, not started
    const items = screen.getAllByRole('listitem').filter((li) => li.hasAttribute('data-step'));
    expect(items.map((li) => li.getAttribute('data-step'))).toEqual(['repo', 'job', 'env']);
    expect(screen.getByRole('link', { name: 'Step repo run' }).getAttribute('href')).toBe('/runs/r-repo');
    expect(screen.getByRole('link', { name: 'Step job run' }).getAttribute('href')).toBe('/runs/r-job');
    expect(within(items[1]).getByText(/the step that failed/)).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Undo of repo run' }).getAttribute('href')).toBe('/runs/u-repo');
    expect(screen.getByTestId('compensated').textContent).toMatch(/^Compensated/);
    fireEvent.click(screen.getByRole('button', { name: /Resume/ }));
    await waitFor(() => expect(changed).toHaveBeenCalled());
    const call = f.mock.calls.find((c) => String(c[0]) === '/v1/runs/wf1/resume')!;
    expect(call[1]!.method).toBe('POST');
    expect((call[1]!.headers as Record<string, string>)['X-CSRF-Token']).toBe('csrf-1');
    expect(changed.mock.calls[0][0].status).toBe('running');
  });
  it('offers no Resume to someone who may not cancel the run, nor on a workflow that did not fail', async () => {
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(404, { code: 'not_found' }));
    const carol: Me = { ...bob, subject: 'carol', teams: ['sre'], actions: {} };
    const { unmount } = render(wrap(<WorkflowSteps run={failedWf} onChange={() => {}} />, carol));
    await waitFor(() => expect(document.querySelector('[data-step=repo]')).not.toBeNull());
    expect(screen.queryByRole('button', { name: /Resume/ })).toBeNull();
    unmount();
    render(wrap(<WorkflowSteps run={{ ...failedWf, status: 'succeeded', failed_step: undefined, compensated: undefined, steps: failedWf.steps!.slice(0, 1) }} onChange={() => {}} />));
    await screen.findByText('repo');
    expect(screen.queryByRole('button', { name: /Resume/ })).toBeNull();
    expect(screen.queryByTestId('compensated')).toBeNull();
  });
  it('asks again for the secret inputs the workflow dropped, and resumes a timed-out one with them', async () => {
    setCsrfToken('csrf-2');
    const timedOut: Run = { ...failedWf, status: 'timed_out', reason: 'deadline_exceeded', secret_inputs: ['/token', '/db/pass~1word'] };
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const url = String(input);
      if (url === '/v1/actions/scaffold') return jsonResponse(200, { id: 'scaffold', steps: defs });
      if (url === '/v1/runs/wf1/resume') return jsonResponse(202, { ...timedOut, status: 'running' });
      return jsonResponse(404, { code: 'not_found' });
    });
    const changed = vi.fn();
    render(wrap(<WorkflowSteps run={timedOut} onChange={changed} />));
    const button = await screen.findByRole('button', { name: /Resume \(its deadline starts again\)/ });
    expect((button as HTMLButtonElement).disabled).toBe(true); // secrets missing
    fireEvent.change(screen.getByLabelText('token'), { target: { value: 's3cret' } });
    expect((button as HTMLButtonElement).disabled).toBe(true); // one still missing
    fireEvent.change(screen.getByLabelText('db/pass~1word'), { target: { value: 'pw' } });
    expect((button as HTMLButtonElement).disabled).toBe(false);
    fireEvent.click(button);
    await waitFor(() => expect(changed).toHaveBeenCalled());
    const call = f.mock.calls.find((c) => String(c[0]) === '/v1/runs/wf1/resume')!;
    expect(JSON.parse(String(call[1]!.body))).toEqual({ inputs: { token: 's3cret', db: { 'pass/word': 'pw' } } });
  });
  it('inputsAt puts each value at its JSON pointer', () => {
    expect(inputsAt(['/a', '/b/c', '/b/d~0e'], { '/a': '1', '/b/c': '2', '/b/d~0e': '3' })).toEqual({
      a: '1',
      b: { c: '2', 'd~e': '3' },
    });
  });
  it('says when an undo failed', () => {
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(404, { code: 'not_found' }));
    render(wrap(<WorkflowSteps run={{ ...failedWf, compensated: false, needs_reconciliation: true }} onChange={() => {}} />));
    expect(screen.getByTestId('compensated').textContent).toMatch(/Not compensated/);
  });
  it('renders nothing for a run that is not a workflow; a step run links to its workflow', () => {
    const plain: Run = { ...failedWf, worker_type: 'exec', steps: undefined };
    const { container } = render(wrap(<WorkflowSteps run={plain} onChange={() => {}} />));
    expect(container.querySelector('[data-testid=workflow]')).toBeNull();
    render(wrap(<ParentLink run={{ ...plain, id: 'r-job', parent_run: 'wf1', step: 'job', operation: 'create' }} />));
    expect(screen.getByTestId('parent-run').textContent).toMatch(/Step job of its workflow run/);
    expect(screen.getByRole('link', { name: 'its workflow run' }).getAttribute('href')).toBe('/runs/wf1');
  });
});

const findings = [
  { check: 'labels', rule: 'required-labels', severity: 'high', address: 'terraform_data.env', message: 'labels.owner is missing' },
  { rule: 'no-deletions', severity: 'medium', message: 'the plan deletes something' },
];
const overridable: Run = {
  id: 'r9',
  action: { id: 'env' },
  status: 'pending_approval',
  attempt: 1,
  inputs: {},
  requested_by: { subject: 'bob', teams: ['payments'] },
  created_at: '2026-01-01T00:00:00Z',
  plan_checks: { passed: false, findings },
  approval: { required: 1, remaining: 1, findings_to_acknowledge: true },
};
const carol: Me = { ...bob, subject: 'carol', teams: ['sre'] };

describe('PlanFindings', () => {
  it('lists rule, severity, address and message of each finding', () => {
    render(wrap(<PlanFindings run={overridable} />));
    const box = screen.getByTestId('findings');
    expect(box.textContent).toMatch(/failed/);
    const rows = box.querySelectorAll('li[data-rule]');
    expect(rows.length).toBe(2);
    expect(rows[0].textContent).toContain('required-labels');
    expect(rows[0].textContent).toContain('high');
    expect(rows[0].textContent).toContain('terraform_data.env');
    expect(rows[0].textContent).toContain('labels.owner is missing');
  });
  it('says passed and lists nothing for a passing check; nothing without checks', () => {
    const { unmount } = render(wrap(<PlanFindings run={{ ...overridable, plan_checks: { passed: true, findings: [] } }} />));
    expect(screen.getByTestId('findings').textContent).toMatch(/passed/);
    expect(screen.getByTestId('findings').querySelector('li')).toBeNull();
    unmount();
    render(wrap(<PlanFindings run={{ ...overridable, plan_checks: undefined }} />));
    expect(screen.queryByTestId('findings')).toBeNull();
  });
});

describe('DecisionBox with findings to acknowledge', () => {
  it('keeps Approve disabled until the findings are acknowledged, then sends acknowledge_findings', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(200, { ...overridable, status: 'queued' }));
    const done = vi.fn();
    render(wrap(<DecisionBox run={overridable} onDecided={done} />, carol));
    const approve = screen.getByRole('button', { name: 'Approve' }) as HTMLButtonElement;
    expect(approve.disabled).toBe(true);
    fireEvent.click(approve);
    expect(f).not.toHaveBeenCalled();
    fireEvent.click(screen.getByLabelText(/I have read the 2 plan check finding/));
    expect(approve.disabled).toBe(false);
    fireEvent.click(approve);
    await waitFor(() => expect(done).toHaveBeenCalled());
    expect(JSON.parse(f.mock.calls[0][1]!.body as string)).toEqual({ decision: 'approve', acknowledge_findings: true });
  });
  it('rejects without acknowledging, and asks nothing when there is nothing to acknowledge', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(200, { ...overridable, status: 'rejected' }));
    const { unmount } = render(wrap(<DecisionBox run={overridable} onDecided={() => {}} />, carol));
    fireEvent.change(screen.getByLabelText('Comment'), { target: { value: 'no' } });
    fireEvent.click(screen.getByRole('button', { name: 'Reject' }));
    await waitFor(() => expect(f).toHaveBeenCalled());
    expect(JSON.parse(f.mock.calls[0][1]!.body as string)).toEqual({ decision: 'reject', comment: 'no' });
    unmount();
    render(wrap(<DecisionBox run={{ ...overridable, plan_checks: undefined, approval: { required: 1, remaining: 1 } }} onDecided={() => {}} />, carol));
    expect(screen.queryByLabelText(/plan check finding/)).toBeNull();
    expect((screen.getByRole('button', { name: 'Approve' }) as HTMLButtonElement).disabled).toBe(false);
  });
});

const drifted: Resource = {
  id: 'res1',
  action: 'lease',
  kind: 'sandbox',
  name: 'sbx-drift',
  owner: { subject: 'bob', teams: ['payments'] },
  status: 'active',
  expires_at: '2099-01-01T00:00:00Z',
  drift: {
    status: 'drifted',
    summary: { add: 1, change: 0, destroy: 0, resources: [{ address: 'terraform_data.replica[0]', actions: ['create'] }] },
    checked_at: '2026-01-01T00:00:00Z',
    next_at: '2026-01-01T01:00:00Z',
    run: 'drun1',
  },
};

describe('Drift', () => {
  it('shows status and counts; the detail adds what differs and the check run', () => {
    const { container, unmount } = render(wrap(<DriftInfo drift={drifted.drift} />));
    expect(container.textContent).toMatch(/drifted \+1 ~0 −0/);
    expect(container.textContent).not.toContain('terraform_data.replica[0]');
    unmount();
    render(wrap(<DriftInfo drift={drifted.drift} detail />));
    expect(screen.getByText('terraform_data.replica[0]')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'check run' }).getAttribute('href')).toBe('/runs/drun1');
  });
  it('says not checked before the first check', () => {
    render(wrap(<DriftInfo drift={undefined} />));
    expect(screen.getByText('not checked')).toBeTruthy();
  });
  it('the resources page filters by drift through the API', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const url = String(input);
      if (url.startsWith('/v1/resources?') && url.includes('drift=drifted')) return jsonResponse(200, { items: [drifted] });
      if (url.startsWith('/v1/resources?')) return jsonResponse(200, { items: [{ ...drifted, id: 'res2', name: 'sbx-fine', drift: { status: 'in_sync' } }, drifted] });
      return jsonResponse(404, { code: 'not_found' });
    });
    // No live stream in jsdom: a source that never says anything.
    (globalThis as unknown as { EventSource: unknown }).EventSource = class {
      onopen = null;
      onerror = null;
      addEventListener() {}
      close() {}
    };
    render(wrap(<ResourcesPage />, bob, '/resources'));
    await screen.findByText('sbx-fine');
    expect(screen.getAllByTestId('drift').map((d) => d.textContent)).toEqual([expect.stringMatching(/in sync/), expect.stringMatching(/drifted/)]);
    fireEvent.change(screen.getByLabelText('Drift'), { target: { value: 'drifted' } });
    await waitFor(() => expect(screen.queryByText('sbx-fine')).toBeNull());
    expect(screen.getByText('sbx-drift')).toBeTruthy();
    expect(f.mock.calls.some((c) => /[?&]drift=drifted/.test(String(c[0])))).toBe(true);
  });
});
