import { useState } from 'react';
import { ApiError, get, qs, type AuditEntry, type AuditVerify, type Page } from '../api';
import { ErrorBox, Loading, useLoad } from '../components/common';
import { useSession } from '../session';
import { formatTime, isAdmin } from '../util';

function ChainStatus() {
  const v = useLoad((s) => get<AuditVerify>('/v1/admin/audit/verify', s), []);
  if (v.loading && !v.data) return <Loading />;
  if (v.error) {
    if (v.error instanceof ApiError && v.error.status === 404)
      return <p className="muted">This broker does not offer chain verification (GET /v1/admin/audit/verify).</p>;
    return <ErrorBox error={v.error} />;
  }
  const d = v.data!;
  return (
    <div className={'chain ' + (d.ok ? 'ok' : 'bad')} role="status" data-testid="chain-status">
      {d.ok ? (
        <strong>Chain verified</strong>
      ) : (
        <strong>Chain BROKEN</strong>
      )}
      {typeof d.entries === 'number' && <> · {d.entries} entries</>}
      {d.head && (
        <>
          {' '}
          · head #{d.head.seq} <code>{String(d.head.hash).slice(0, 16)}…</code>
        </>
      )}
      {!d.ok && d.problems?.length ? (
        <ul>
          {d.problems.slice(0, 20).map((p, i) => (
            <li key={i}>{typeof p === 'string' ? p : JSON.stringify(p)}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export default function AuditPage() {
  const { me } = useSession();
  const [f, setF] = useState({ actor: '', action: '', run: '', since: '', until: '' });
  const [applied, setApplied] = useState(f);
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(
    (s) =>
      get<Page<AuditEntry>>(
        '/v1/audit' +
          qs({
            ...applied,
            since: applied.since ? new Date(applied.since).toISOString() : '',
            until: applied.until ? new Date(applied.until).toISOString() : '',
            limit: 50,
            cursor,
          }),
        s,
      ),
    [applied, cursor],
  );
  const field = (k: keyof typeof f, label: string, type = 'text') => (
    <label>
      {label} <input type={type} value={f[k]} onChange={(e) => setF({ ...f, [k]: e.target.value })} />
    </label>
  );
  return (
    <section>
      <h1>Audit</h1>
      {isAdmin(me) && (
        <section aria-labelledby="chain">
          <h2 id="chain">Hash chain</h2>
          <ChainStatus />
        </section>
      )}
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor(null);
          setApplied(f);
        }}
      >
        {field('actor', 'Actor')}
        {field('action', 'Verb (e.g. run.*)')}
        {field('run', 'Run id')}
        {field('since', 'Since', 'datetime-local')}
        {field('until', 'Until', 'datetime-local')}
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      <table className="list">
        <caption className="sr-only">Audit entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Verb</th>
            <th scope="col">Object</th>
            <th scope="col">Seq</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((e) => (
            <tr key={e.id}>
              <td>{formatTime(e.at)}</td>
              <td>{e.actor}</td>
              <td>
                <code>{e.verb}</code>
              </td>
              <td>
                <code>{e.object}</code>
              </td>
              <td>{e.seq ?? <span className="muted">sealing…</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={!cursor} onClick={() => setCursor(null)}>
          Newest
        </button>
        <button type="button" disabled={!list.data?.next_cursor} onClick={() => setCursor(list.data?.next_cursor ?? null)}>
          Older
        </button>
      </nav>
    </section>
  );
}
