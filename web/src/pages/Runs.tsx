import { useCallback, useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { get, qs, type Page, type Run, type RunStatus } from '../api';
import { ErrorBox, Loading, StatusBadge } from '../components/common';
import { useSession } from '../session';
import { follow } from '../sse';
import { formatTime } from '../util';

const STATUSES: RunStatus[] = ['accepted', 'pending_approval', 'queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired'];

export default function RunsPage() {
  const { me } = useSession();
  const [params, setParams] = useSearchParams();
  const scope = params.get('scope') ?? 'mine';
  const status = params.get('status') ?? '';
  const action = params.get('action') ?? '';
  const requester = params.get('requester') ?? '';
  const since = params.get('since') ?? '';
  const [items, setItems] = useState<Run[]>([]);
  const [cursors, setCursors] = useState<string[]>([]); // cursors of the pages before this one
  const [cursor, setCursor] = useState<string | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);

  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
    setCursors([]);
    setCursor(null);
  };

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const page = await get<Page<Run>>('/v1/runs' + qs({ status, action, limit: 50, cursor }));
      setItems(page.items);
      setNext(page.next_cursor ?? null);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }, [status, action, cursor]);

  useEffect(() => {
    void load();
  }, [load]);

  // Live: a transition updates the run's row; a run we do not show yet
  // reloads the first page.
  useEffect(() => {
    const f = follow({
      url: '/v1/events',
      events: ['run'],
      // What changed before the stream opened (or while it reconnected).
      onState: (st) => {
        if (st === 'open') void load();
      },
      onEvent: (_n, data) => {
        const d = data as { run_id: string; to: RunStatus };
        setItems((prev) => {
          if (prev.some((r) => r.id === d.run_id)) return prev.map((r) => (r.id === d.run_id ? { ...r, status: d.to } : r));
          if (cursor === null) void load();
          return prev;
        });
      },
    });
    return () => f.close();
  }, [cursor, load]);

  const shown = items.filter((r) => {
    if (!me) return true;
    if (scope === 'mine' && r.requested_by.subject !== me.subject) return false;
    if (scope === 'team' && r.requested_by.subject !== me.subject && !(r.requested_by.teams ?? []).some((t) => me.teams.includes(t)))
      return false;
    if (requester && !r.requested_by.subject.includes(requester)) return false;
    if (since && Date.parse(r.created_at) < Date.parse(since)) return false;
    return true;
  });

  return (
    <section>
      <h1>Runs</h1>
      <div className="filters">
        <fieldset className="scope">
          <legend>Whose</legend>
          {[
            ['mine', 'Mine'],
            ['team', "My teams'"],
            ['all', 'All I may see'],
          ].map(([v, l]) => (
            <label key={v}>
              <input type="radio" name="scope" value={v} checked={scope === v} onChange={() => set('scope', v)} /> {l}
            </label>
          ))}
        </fieldset>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => set('status', e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </label>
        <label>
          Action <input value={action} onChange={(e) => set('action', e.target.value)} />
        </label>
        <label>
          Requester <input value={requester} onChange={(e) => set('requester', e.target.value)} />
        </label>
        <label>
          Since <input type="date" value={since} onChange={(e) => set('since', e.target.value)} />
        </label>
      </div>
      <ErrorBox error={error} />
      {loading && !items.length ? <Loading /> : null}
      <table className="list">
        <caption className="sr-only">Runs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Action</th>
            <th scope="col">Status</th>
            <th scope="col">Requested by</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.id} data-run={r.id}>
              <td>
                <Link to={'/runs/' + r.id}>{r.action.id}</Link>
              </td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>{r.requested_by.subject}</td>
              <td>{formatTime(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && shown.length === 0 && <p>No run here{items.length ? ' (on this page; try the next one or “All”)' : ''}.</p>}
      <nav className="pager" aria-label="Pages">
        <button
          type="button"
          disabled={!cursors.length}
          onClick={() => {
            const prev = [...cursors];
            const c = prev.pop() ?? null;
            setCursors(prev);
            setCursor(c);
          }}
        >
          Newer
        </button>
        <button
          type="button"
          disabled={!next}
          onClick={() => {
            setCursors([...cursors, cursor ?? '']);
            setCursor(next);
          }}
        >
          Older
        </button>
      </nav>
    </section>
  );
}
