import { describe, expect, it, vi, beforeEach } from 'vitest';
import { render, screen, fireEvent, waitFor, act } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { RequestForm } from './pages/Request';
import { DecisionBox } from './components/RunBits';
import { LogView } from './components/LogView';
import LoginPage from './pages/Login';
import { SessionContext } from './session';
import { setCsrfToken, post, get, type Action, type Me, type Run, type LogLine } from './api';

function jsonResponse(status: number, body: unknown, type = 'application/json') {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } });
}

const echo: Action = {
  id: 'echo',
  version: 'v1',
  title: 'Echo a message',
  worker_type: 'exec',
  inputs: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required: ['message'],
    properties: {
      message: { type: 'string', title: 'Message', minLength: 1, maxLength: 200 },
      replicas: { type: 'integer', title: 'Replicas', default: 2 },
      api_token: { type: 'string', title: 'API token', writeOnly: true },
    },
  },
};

const me: Me = {
  subject: 'bob',
  teams: ['payments'],
  roles: [],
  worker: false,
  permissions: [],
  actions: { echo: { run: {} }, deploy: { decide_approvals: {} } },
  other_runs: {},
  policy: 't',
};

function withSession(ui: React.ReactNode, who: Me = me) {
  return (
    <SessionContext.Provider value={{ session: null, me: who, refresh: async () => {}, signOut: async () => {} }}>
      <MemoryRouter initialEntries={['/actions/echo']}>
        <Routes>
          <Route path="/actions/echo" element={ui} />
          <Route path="/runs/:id" element={<p>run page</p>} />
          <Route path="/catalog" element={<p>catalog page</p>} />
        </Routes>
      </MemoryRouter>
    </SessionContext.Provider>
  );
}

beforeEach(() => {
  vi.restoreAllMocks();
  setCsrfToken(null);
});

describe('api client', () => {
  it('sends the CSRF token on POST, not on GET, and never an Authorization header', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(200, {}));
    setCsrfToken('csrf-123');
    await get('/v1/me');
    await post('/v1/runs/x/cancel', {});
    const [, getInit] = f.mock.calls[0];
    const [, postInit] = f.mock.calls[1];
    expect((getInit!.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined();
    expect((postInit!.headers as Record<string, string>)['X-CSRF-Token']).toBe('csrf-123');
    expect(postInit!.credentials).toBe('same-origin');
    for (const c of f.mock.calls) expect((c[1]!.headers as Record<string, string>).Authorization).toBeUndefined();
  });
});

describe('Request form', () => {
  it('applies defaults and renders writeOnly fields as password inputs', () => {
    render(withSession(<RequestForm action={echo} />));
    expect((screen.getByLabelText(/Replicas/) as HTMLInputElement).value).toBe('2');
    expect((screen.getByLabelText(/API token/) as HTMLInputElement).type).toBe('password');
  });

  it('shows a server-side error under the field its pointer names, not as a banner', async () => {
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () =>
      jsonResponse(
        422,
        {
          type: 'about:blank',
          title: 'Unprocessable',
          status: 422,
          code: 'validation_failed',
          detail: 'inputs do not match',
          errors: [{ pointer: '/inputs/message', message: 'must not say hello (server)', keyword: 'not' }],
        },
        'application/problem+json',
      ),
    );
    render(withSession(<RequestForm action={echo} />));
    fireEvent.change(screen.getByLabelText(/Message/), { target: { value: 'hello' } });
    fireEvent.click(screen.getByRole('button', { name: /Submit request/ }));
    const msg = await screen.findByText('must not say hello (server)');
    // Inside the message field's own group.
    const group = msg.closest('.form-group')!;
    expect(group.querySelector('#in_message')).not.toBeNull();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('sends one request with an Idempotency-Key on a double click', async () => {
    let resolve!: (r: Response) => void;
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(
      () => new Promise<Response>((r) => (resolve = r)),
    );
    render(withSession(<RequestForm action={echo} />));
    fireEvent.change(screen.getByLabelText(/Message/), { target: { value: 'hi' } });
    const btn = screen.getByRole('button', { name: /Submit request/ });
    fireEvent.click(btn);
    fireEvent.click(btn);
    await waitFor(() => expect(f).toHaveBeenCalledTimes(1));
    const init = f.mock.calls[0][1]!;
    expect((init.headers as Record<string, string>)['Idempotency-Key']).toMatch(/^console-/);
    expect(JSON.parse(init.body as string)).toEqual({ inputs: { message: 'hi', replicas: 2 } });
    await act(async () => resolve(jsonResponse(202, { id: 'run-1' })));
    expect(await screen.findByText('run page')).toBeTruthy();
    expect(f).toHaveBeenCalledTimes(1);
  });

  it('checks maxLength in the browser too (rjsf + AJV) where eval is allowed', async () => {
    const f = vi.spyOn(globalThis, 'fetch');
    render(withSession(<RequestForm action={echo} />));
    fireEvent.change(screen.getByLabelText(/Message/), { target: { value: 'x'.repeat(201) } });
    fireEvent.click(screen.getByRole('button', { name: /Submit request/ }));
    expect(await screen.findByText(/must NOT have more than 200 characters/)).toBeTruthy();
    expect(f).not.toHaveBeenCalled();
  });

  it('offers a TTL picker bounded by the action and break-glass only where allowed', () => {
    const a: Action = {
      ...echo,
      id: 'env',
      ttl: { default_seconds: 3600, max_seconds: 86400 },
      resource: { kind: 'environment' },
      approval: { rules: [{ approvals: 1 }] },
    };
    const { unmount } = render(withSession(<RequestForm action={a} />, { ...me, actions: { env: { run: {}, break_glass: {} } } }));
    const opts = Array.from((screen.getByLabelText(/Lifetime/) as HTMLSelectElement).options).map((o) => Number(o.value));
    expect(Math.max(...opts)).toBe(86400);
    expect(screen.getByLabelText(/Break glass/)).toBeTruthy();
    unmount();
    render(withSession(<RequestForm action={a} />, { ...me, actions: { env: { run: {} } } }));
    expect(screen.queryByLabelText(/Break glass/)).toBeNull();
  });
});

const pending: Run = {
  id: 'r1',
  action: { id: 'deploy' },
  status: 'pending_approval',
  attempt: 1,
  inputs: { env: 'prod' },
  requested_by: { subject: 'bob', teams: ['payments'] },
  created_at: '2026-01-01T00:00:00Z',
  approval: { required: 1, remaining: 1 },
};

describe('DecisionBox', () => {
  it('shows the requester why, without approve/reject buttons', () => {
    render(withSession(<DecisionBox run={pending} onDecided={() => {}} />));
    expect(screen.getByTestId('cannot-decide').textContent).toMatch(/You requested this run/);
    expect(screen.queryByRole('button', { name: 'Approve' })).toBeNull();
  });
  it('lets an approver approve with a comment', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async () => jsonResponse(200, { ...pending, status: 'queued' }));
    const done = vi.fn();
    render(withSession(<DecisionBox run={pending} onDecided={done} />, { ...me, subject: 'carol', teams: ['sre'] }));
    fireEvent.change(screen.getByLabelText('Comment'), { target: { value: 'ok' } });
    fireEvent.click(screen.getByRole('button', { name: 'Approve' }));
    await waitFor(() => expect(done).toHaveBeenCalled());
    expect(f.mock.calls[0][0]).toBe('/v1/runs/r1/decisions');
    expect(JSON.parse(f.mock.calls[0][1]!.body as string)).toEqual({ decision: 'approve', comment: 'ok' });
  });
});

describe('LogView', () => {
  // jsdom has no layout: give the log box the size CSS gives it in a browser.
  beforeEach(() => {
    vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(384);
    vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(800);
  });
  it('renders ANSI colours as classes and escapes HTML', () => {
    const lines: LogLine[] = [
      { pos: 1, attempt: 1, seq: 1, stream: 'stdout', line: '\u001b[31mred\u001b[0m <b>x</b>', at: '' },
    ];
    const { container } = render(<LogView lines={lines} state="open" />);
    const row = container.querySelector('[data-pos="1"]')!;
    expect(row.querySelector('.ansi-red-fg')?.textContent).toBe('red');
    expect(row.querySelector('b')).toBeNull();
    expect(row.textContent).toContain('<b>x</b>');
    expect(container.querySelector('[data-testid="logs"]')!.getAttribute('data-lines')).toBe('1');
  });
  it('keeps 100k lines out of the DOM (virtualised)', () => {
    const lines: LogLine[] = Array.from({ length: 100000 }, (_, i) => ({ pos: i + 1, attempt: 1, seq: i, stream: 'stdout' as const, line: 'line ' + i, at: '' }));
    const { container } = render(<LogView lines={lines} state="closed" />);
    const rows = container.querySelectorAll('.logline').length;
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThan(200);
  });
});

describe('Login', () => {
  it('exchanges the token for a session and lists OIDC providers', async () => {
    const f = vi.spyOn(globalThis, 'fetch').mockImplementation(async (url) => {
      if (url === '/v1/auth/providers') return jsonResponse(200, [{ id: 'kc', name: 'Keycloak', login_url: '/auth/oidc/login' }]);
      return jsonResponse(201, { subject: 'bob', teams: [], roles: [], csrf_token: 'c1' });
    });
    const refresh = vi.fn(async () => {});
    render(
      <SessionContext.Provider value={{ session: null, me: null, refresh, signOut: async () => {} }}>
        <MemoryRouter initialEntries={['/login?next=/runs/abc']}>
          <Routes>
            <Route path="/login" element={<LoginPage />} />
            <Route path="/runs/abc" element={<p>deep link</p>} />
          </Routes>
        </MemoryRouter>
      </SessionContext.Provider>,
    );
    const link = await screen.findByRole('link', { name: /Sign in with Keycloak/ });
    expect(link.getAttribute('href')).toBe('/auth/oidc/login?return_to=' + encodeURIComponent('/ui/runs/abc'));
    fireEvent.change(screen.getByLabelText('API token'), { target: { value: 'gwt_secret' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('deep link')).toBeTruthy();
    const call = f.mock.calls.find((c) => c[0] === '/v1/session')!;
    expect(call[1]!.method).toBe('POST');
    expect(JSON.parse(call[1]!.body as string)).toEqual({ token: 'gwt_secret' });
    expect(refresh).toHaveBeenCalled();
  });
});

describe('useRunLogs', () => {
  it('ends on the end event (whose id is the last line id) and shows each line once', async () => {
    const { useRunLogs } = await import('./components/LogView');
    const sources: { url: string; fire: (n: string, id: string, d: unknown) => void; closed: boolean }[] = [];
    const factory = (url: string) => {
      const ls: Record<string, ((e: MessageEvent) => void)[]> = {};
      const src = {
        readyState: 1,
        onopen: null,
        onerror: null,
        addEventListener: (n: string, f: (e: MessageEvent) => void) => (ls[n] = ls[n] ?? []).push(f),
        close() {
          rec.closed = true;
        },
      };
      const rec = {
        url,
        closed: false,
        // EventSource keeps the last id for events that carry none (like `end`).
        fire: (n: string, id: string, d: unknown) => (ls[n] ?? []).forEach((f) => f({ lastEventId: id, data: JSON.stringify(d) } as MessageEvent)),
      };
      sources.push(rec);
      return src as unknown as EventSource;
    };
    let state: ReturnType<typeof useRunLogs> | null = null;
    function Probe() {
      state = useRunLogs('r1', factory);
      return null;
    }
    render(<Probe />);
    await act(async () => {
      sources[0].fire('log', '10', { attempt: 1, seq: 1, stream: 'stdout', line: 'a', at: '' });
      sources[0].fire('log', '10', { attempt: 1, seq: 1, stream: 'stdout', line: 'a', at: '' });
      sources[0].fire('log', '11', { attempt: 1, seq: 2, stream: 'stdout', line: 'b', at: '' });
      sources[0].fire('end', '11', { status: 'succeeded' });
      await new Promise((r) => setTimeout(r, 50));
    });
    expect(state!.lines.map((l) => l.line)).toEqual(['a', 'b']);
    expect(state!.end).toEqual({ status: 'succeeded' });
    expect(state!.state).toBe('closed');
    expect(sources[0].closed).toBe(true);
  });
});

describe('Request again', () => {
  it('prefills the form with the earlier run’s inputs', () => {
    render(
      <SessionContext.Provider value={{ session: null, me, refresh: async () => {}, signOut: async () => {} }}>
        <MemoryRouter initialEntries={[{ pathname: '/actions/echo', state: { inputs: { message: 'again', replicas: 4 } } }]}>
          <Routes>
            <Route path="/actions/echo" element={<RequestForm action={echo} />} />
          </Routes>
        </MemoryRouter>
      </SessionContext.Provider>,
    );
    expect((screen.getByLabelText(/Message/) as HTMLInputElement).value).toBe('again');
    expect((screen.getByLabelText(/Replicas/) as HTMLInputElement).value).toBe('4');
  });
});

describe('Runs page', () => {
  it('shows mine by default and everything visible under "All"', async () => {
    const { default: RunsPage } = await import('./pages/Runs');
    const mk = (id: string, subject: string, teams: string[]): Run => ({
      id,
      action: { id: 'echo' },
      status: 'succeeded',
      attempt: 1,
      inputs: {},
      requested_by: { subject, teams },
      created_at: '2026-01-01T00:00:00Z',
    });
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () =>
      jsonResponse(200, { items: [mk('r-mine', 'bob', ['payments']), mk('r-team', 'eve', ['payments']), mk('r-other', 'zed', ['ops'])], next_cursor: null }),
    );
    // No live stream in jsdom: a source that never says anything.
    (globalThis as unknown as { EventSource: unknown }).EventSource = class {
      onopen = null;
      onerror = null;
      addEventListener() {}
      close() {}
    };
    render(
      <SessionContext.Provider value={{ session: null, me, refresh: async () => {}, signOut: async () => {} }}>
        <MemoryRouter initialEntries={['/runs']}>
          <Routes>
            <Route path="/runs" element={<RunsPage />} />
          </Routes>
        </MemoryRouter>
      </SessionContext.Provider>,
    );
    await waitFor(() => expect(document.querySelector('tr[data-run="r-mine"]')).not.toBeNull());
    expect(document.querySelector('tr[data-run="r-team"]')).toBeNull();
    fireEvent.click(screen.getByLabelText(/My teams/));
    await waitFor(() => expect(document.querySelector('tr[data-run="r-team"]')).not.toBeNull());
    expect(document.querySelector('tr[data-run="r-other"]')).toBeNull();
    fireEvent.click(screen.getByLabelText(/All I may see/));
    await waitFor(() => expect(document.querySelector('tr[data-run="r-other"]')).not.toBeNull());
  });
});
