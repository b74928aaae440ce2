import { useMemo, useState } from 'react';
import { Link } from 'react-router';
import { get, type ActionSummary } from '../api';
import { ErrorBox, Loading, useLoad } from '../components/common';
import { needsApproval } from '../util';

export default function CatalogPage() {
  const { data, error, loading } = useLoad((s) => get<{ items: ActionSummary[] }>('/v1/actions', s), []);
  const [q, setQ] = useState('');
  const [tag, setTag] = useState('');
  const items = data?.items ?? [];
  const tags = useMemo(() => [...new Set(items.flatMap((a) => a.tags ?? []))].sort(), [items]);
  const shown = items.filter((a) => {
    if (tag && !(a.tags ?? []).includes(tag)) return false;
    if (!q) return true;
    const hay = [a.id, a.title, a.description ?? '', a.worker_type, ...(a.tags ?? [])].join(' ').toLowerCase();
    return q
      .toLowerCase()
      .split(/\s+/)
      .every((w) => hay.includes(w));
  });
  return (
    <section>
      <h1>Catalog</h1>
      <div className="filters" role="search">
        <label>
          Search <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="title, id, tag…" />
        </label>
        <label>
          Tag{' '}
          <select value={tag} onChange={(e) => setTag(e.target.value)}>
            <option value="">all tags</option>
            {tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      {loading && !data ? <Loading /> : null}
      <ul className="cards" aria-label="Actions">
        {shown.map((a) => (
          <li key={a.id} className="card">
            <h2>
              <Link to={'/actions/' + encodeURIComponent(a.id)}>{a.title}</Link>
            </h2>
            <p className="muted">
              <code>{a.id}</code> · worker type <code>{a.worker_type}</code>
              {a.workers && a.workers.seen === false ? <span className="warn"> · no worker seen</span> : null}
            </p>
            {a.description && <p>{a.description}</p>}
            <p>
              {needsApproval(a) && <span className="badge approval">needs approval</span>}
              {a.resource && <span className="badge">creates a {a.resource.kind ?? 'resource'}</span>}
              {(a.tags ?? []).map((t) => (
                <span key={t} className="badge tag">
                  {t}
                </span>
              ))}
            </p>
          </li>
        ))}
      </ul>
      {data && shown.length === 0 && <p>No action matches.</p>}
    </section>
  );
}
